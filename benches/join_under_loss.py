# Joins N times against an embedded room server and prints each join time (join() to completion).
# Run it inside a network namespace with nftables loss to see handshakes under loss, e.g.
#   ip netns add jl; ip netns exec jl ip link set lo up
#   ip netns exec jl nft add table inet t
#   ip netns exec jl nft add chain inet t c "{ type filter hook output priority 0; }"
#   ip netns exec jl nft add rule inet t c meta l4proto udp numgen random mod 100 "<" 10 drop
#   ip netns exec jl python3 benches/join_under_loss.py 60
import sys, time, threading
from daily import Daily, CallClient, EventHandler
from daily.server import RoomServer
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
Daily.init()
with RoomServer(host=sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1", port=0) as s:
    url = s.room_url("jt")
    print("server", url, flush=True)
    mic = Daily.create_microphone_device("m", sample_rate=16000, channels=1, non_blocking=True)
    times, fails = [], []
    for i in range(N):
        c = CallClient()
        ev = threading.Event(); res = {}
        def done(data, err):
            res["err"] = err; ev.set()
        t0 = time.monotonic()
        c.join(url, client_settings={"inputs": {"microphone": {"isEnabled": True, "settings": {"deviceId": "m"}}}}, completion=done)
        ev.wait(30)
        dt = time.monotonic() - t0
        if res.get("err"): fails.append((i, round(dt,2), res["err"]))
        else: times.append(dt)
        ev2 = threading.Event(); c.leave(completion=lambda *a: ev2.set()); ev2.wait(10); c.release()
        print(i, round(dt, 3), res.get("err"), flush=True)
    times.sort()
    print("ok", len(times), "fail", len(fails), "median", times[len(times)//2] if times else None, "max", max(times) if times else None)
    print(fails)
