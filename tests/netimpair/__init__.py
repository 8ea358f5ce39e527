"""Network impairment for tests: the room server and the clients in two network namespaces.

    from netimpair import NetLab, netlab_unavailable

    with NetLab() as lab:                    # namespaces, veth pair, nftables, daily-server
        peer = lab.client_peer()             # a peer.py process inside the clients' namespace
        lab.set_loss(up=10, down=10)         # % random loss per direction (UDP by default)
        lab.set_rate(up_kbit=400)            # a bottleneck per direction (tc tbf; None = unlimited)
        lab.outage()                         # drop everything both ways ...
        lab.restore()                        # ... until restored (loss settings kept)
        lab.dead_peer()                      # drop everything both ways, for good
        lab.restart_server(kill=True)        # SIGKILL + start again on the same address/port
        observer = lab.server_peer()         # a peer process in the server's namespace (lo)

Topology (``k`` unique per lab, from the pid and a counter)::

    ni-s-PID-K  (server)                         ni-c-PID-K  (clients)
      vsPIDK 10.99.X.1/30  <----- veth ----->   vcPIDK 10.99.X.2/30
      daily-server --host 10.99.X.1              peer.py processes

The server binds 10.99.X.1 for HTTP and UDP, and it advertises its bound address as its one
ICE host candidate (``daily-server --host``), so media goes over the veth link. Clients in the
other namespace gather their own host candidate on 10.99.X.2.

Impairment is nftables in each namespace: one ``inet netimp`` table with a prerouting chain
(priority -300, before conntrack) dropping on the veth's ingress. Dropping on ingress (not on
the sender's output hook) keeps it silent: a drop in an output hook fails the sender's
``sendto`` with EPERM, which real loss never does. "up" is clients -> server (dropped entering
the server namespace), "down" is server -> clients. Loss uses ``numgen random mod 100 < N``.

Bandwidth is a ``tc`` token bucket (``tbf``) as the root qdisc of each veth end, so it
limits what leaves a namespace: "up" on the clients' end, "down" on the server's. Its queue
holds ``RATE_QUEUE_MS`` (200 ms) of traffic at the limit, as a home router's buffer does: a
sender above the limit first sees delay grow (what delay-based congestion control such as
GCC reacts to), then tail drops. Loss (nftables, on ingress) and rate (tc, on egress) are
independent and combine.

Needs root (CAP_NET_ADMIN / CAP_SYS_ADMIN for ``ip netns``) and the ``nft`` command;
``netlab_unavailable()`` says why not, for a skip.

Every process is started in its own process group and killed on ``close()`` (also from
``__exit__`` and atexit), and is SIGKILLed by the kernel if the controlling process dies
(PR_SET_PDEATHSIG); the namespaces are deleted after. Stale namespaces named after a pid that
no longer runs (and anything left inside them) are removed when a lab starts. Every wait is
bounded.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER = os.path.join(HERE, "peer.py")
PREFIX = "ni-"
RATE_QUEUE_MS = 200  # the tbf queue at a rate limit, in ms of traffic at that rate
_counter = itertools.count()
_open_labs: "set[NetLab]" = set()


def _run(args: list[str], input: str | None = None, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


_unavailable: list[str | None] = []


def netlab_unavailable() -> str | None:
    """None when a NetLab can be made here, else the reason (for ``pytest.skip``)."""
    if _unavailable:
        return _unavailable[0]
    reason = None
    if os.geteuid() != 0:
        reason = "network impairment needs root (ip netns, nftables)"
    elif not shutil.which("ip") or not shutil.which("nft"):
        reason = "network impairment needs the `ip` (iproute2) and `nft` (nftables) commands"
    else:
        name = f"{PREFIX}probe-{os.getpid()}"
        try:
            _run(["ip", "netns", "add", name])
            try:
                _run(["ip", "netns", "exec", name, "nft", "-f", "-"],
                     input="table inet netimp {\n chain pre {\n type filter hook prerouting priority -300;\n"
                           " meta l4proto udp numgen random mod 100 < 5 drop\n }\n}\n")
            finally:
                _run(["ip", "netns", "del", name], check=False)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            reason = f"network namespaces or nftables unusable here: {e}"
    _unavailable.append(reason)
    return reason


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the process that started it dies (PR_SET_PDEATHSIG
    survives the exec of ``ip netns exec`` and of python), so a killed test run leaves no
    server or peer behind in a namespace."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


def _pid_alive(pid: int) -> bool:
    """True when pid runs (a zombie nobody reaped counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def sweep_stale() -> None:
    """Deletes namespaces ni-s-PID-K / ni-c-PID-K whose PID no longer runs (left by a crash)."""
    r = _run(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if not name.startswith(PREFIX) or len(parts) != 4 or parts[1] not in ("s", "c"):
            continue
        try:
            pid = int(parts[2])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            for p in _run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _run(["ip", "netns", "del", name], check=False)


class Peer:
    """A ``peer.py`` process in a namespace: send commands, wait for its JSON-line events.

    ``events`` is every event so far (dicts with ``ev`` and ``t`` = monotonic seconds).
    """

    def __init__(self, netns: str, label: str, log_dir: str | None = None, env: dict | None = None) -> None:
        self.label = label
        self.events: list[dict] = []
        self.cond = threading.Condition()
        e = dict(os.environ)
        e.setdefault("PYTHONUNBUFFERED", "1")
        if env:
            e.update(env)
        self.stderr_path = os.path.join(log_dir or "/tmp", f"netimpair-{label}-{os.getpid()}-{id(self)}.log")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, PEER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            text=True, bufsize=1, start_new_session=True, env=e, preexec_fn=_die_with_parent,
        )
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"peer-{label}")
        self._reader.start()
        self.wait_for(lambda ev: ev["ev"] == "ready", 20, "peer start")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"ev": "eof", "t": time.monotonic()})
            self.cond.notify_all()

    def send(self, cmd: str, **kw: Any) -> float:
        """Sends a command; returns the monotonic time it was sent."""
        t = time.monotonic()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        return t

    def wait_for(self, pred: Callable[[dict], bool], timeout: float, what: str = "event", since: int = 0) -> dict:
        """The first event (index >= since) matching pred; raises TimeoutError after timeout s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events[since:]:
                    if pred(ev):
                        return ev
                    if ev["ev"] == "eof":
                        raise RuntimeError(f"{self.label}: peer exited while waiting for {what} (log {self.stderr_path})")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.label}: no {what} within {timeout} s")
                self.cond.wait(left)

    def find(self, pred: Callable[[dict], bool], since: int = 0) -> list[dict]:
        with self.cond:
            return [ev for ev in self.events[since:] if pred(ev)]

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    def request(self, cmd: str, reply: str, timeout: float = 10, **kw: Any) -> dict:
        """Sends cmd and waits for the reply event ``reply`` for the same ``name``."""
        since = self.mark()
        self.send(cmd, **kw)
        name = kw.get("name")
        return self.wait_for(lambda ev: ev["ev"] == reply and (name is None or ev.get("name") == name)
                             or ev["ev"] == "exception", timeout, reply, since)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._stderr.close()

    def close(self, timeout: float = 8) -> None:
        """Asks the process to release its clients and exit; kills it after timeout s."""
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class NetLab:
    """Server namespace + clients namespace + veth + nftables + a ``daily-server`` process.

    :param port: the server's HTTP port (fixed so a restarted server keeps its URL).
    :param loss_proto: ``"udp"`` (default: media and ICE/DTLS only; signalling TCP untouched)
        or ``"all"`` for the random loss. Outages and dead peers always drop everything.
    :param start_server: start ``daily-server`` at once (else call ``start_server()``).
    :param server_log_dir: where the server's and peers' stderr go (default /tmp).
    """

    def __init__(self, port: int = 7880, loss_proto: str = "udp", start_server: bool = True,
                 log_dir: str | None = None) -> None:
        if loss_proto not in ("udp", "all"):
            raise ValueError("loss_proto must be 'udp' or 'all'")
        k = next(_counter)
        pid = os.getpid()
        self.srv_ns = f"{PREFIX}s-{pid}-{k}"
        self.cli_ns = f"{PREFIX}c-{pid}-{k}"
        # Interface names are limited to 15 bytes.
        tag = f"{pid % 10**8}{k % 100:02d}"
        self.srv_if = f"vs{tag}"
        self.cli_if = f"vc{tag}"
        x = (pid + k) % 250 + 1
        self.srv_ip = f"10.99.{x}.1"
        self.cli_ip = f"10.99.{x}.2"
        self.port = port
        self.loss_proto = loss_proto
        self.log_dir = log_dir or "/tmp"
        self.up = 0.0
        self.down = 0.0
        self.up_kbit: float | None = None
        self.down_kbit: float | None = None
        self.blocked = False
        self.server: subprocess.Popen | None = None
        self.server_log = os.path.join(self.log_dir, f"netimpair-server-{pid}-{k}.log")
        self.peers: list[Peer] = []
        self.history: list[tuple[float, str]] = []  # (monotonic time, what changed)
        self._closed = False
        sweep_stale()
        _open_labs.add(self)
        try:
            self._make_namespaces()
            self.apply()
            if start_server:
                self.start_server()
        except BaseException:
            self.close()
            raise

    # --- setup and teardown -------------------------------------------------------------

    def _ns(self, ns: str, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return _run(["ip", "netns", "exec", ns, *args], input=input, check=check)

    def _make_namespaces(self) -> None:
        _run(["ip", "netns", "add", self.srv_ns])
        _run(["ip", "netns", "add", self.cli_ns])
        _run(["ip", "link", "add", self.srv_if, "netns", self.srv_ns, "type", "veth",
              "peer", "name", self.cli_if, "netns", self.cli_ns])
        for ns, ifn, ip in ((self.srv_ns, self.srv_if, self.srv_ip), (self.cli_ns, self.cli_if, self.cli_ip)):
            self._ns(ns, "ip", "link", "set", "lo", "up")
            self._ns(ns, "ip", "addr", "add", f"{ip}/30", "dev", ifn)
            self._ns(ns, "ip", "link", "set", ifn, "up")

    def close(self) -> None:
        """Kills every process of this lab and deletes its namespaces. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for p in self.peers:
            try:
                p.kill()
            except Exception:
                pass
        self.stop_server(kill=True)
        for ns in (self.cli_ns, self.srv_ns):
            # Anything still inside (a grandchild that escaped its group) is killed first: a
            # namespace lives on as long as one process uses it.
            r = _run(["ip", "netns", "pids", ns], check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _run(["ip", "netns", "del", ns], check=False)
        _open_labs.discard(self)

    def __enter__(self) -> "NetLab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the server ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.srv_ip}:{self.port}"

    def room_url(self, room: str) -> str:
        return f"{self.base_url}/{room}"

    def start_server(self, timeout: float = 20) -> float:
        """Starts ``daily-server --host SRV_IP --port PORT`` in the server namespace; returns
        the seconds until it said it listens."""
        assert self.server is None or self.server.poll() is not None, "server already running"
        log = open(self.server_log, "ab")
        t0 = time.monotonic()
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.srv_ns, sys.executable, "-u", "-m", "daily.cli",
             "--host", self.srv_ip, "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True, preexec_fn=_die_with_parent,
        )
        log.close()
        ready = threading.Event()

        def watch(proc: subprocess.Popen = self.server) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "listening on" in line:
                    ready.set()

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(timeout):
            self.stop_server(kill=True)
            raise RuntimeError(f"daily-server did not start within {timeout} s (log {self.server_log})")
        self.history.append((time.monotonic(), "server started"))
        return time.monotonic() - t0

    def stop_server(self, kill: bool = False, timeout: float = 8) -> float | None:
        """SIGKILL (a crash) with ``kill``, else SIGTERM (clean: callEnded to everyone).
        Returns the monotonic time the signal was sent (None if nothing ran)."""
        p, self.server = self.server, None
        if p is None or p.poll() is not None:
            return None
        t = time.monotonic()
        try:
            os.killpg(p.pid, signal.SIGKILL if kill else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        self.history.append((t, "server killed" if kill else "server stopped"))
        return t

    def restart_server(self, kill: bool = True) -> tuple[float, float]:
        """Stops (SIGKILL by default) and starts the server again on the same address and
        port. Returns (time the signal was sent, time it listens again), monotonic."""
        t_down = self.stop_server(kill=kill) or time.monotonic()
        self.start_server()
        return t_down, time.monotonic()

    # --- peers ---------------------------------------------------------------------------

    def client_peer(self, label: str = "clients") -> Peer:
        p = Peer(self.cli_ns, label, self.log_dir)
        self.peers.append(p)
        return p

    def server_peer(self, label: str = "observer") -> Peer:
        """A peer in the server's namespace: it reaches the server over loopback routing,
        untouched by any impairment (an observer of what the server does)."""
        p = Peer(self.srv_ns, label, self.log_dir)
        self.peers.append(p)
        return p

    # --- impairment ----------------------------------------------------------------------

    def _rules(self, ifname: str, loss: float) -> str:
        lines = ["table inet netimp { }", "delete table inet netimp",
                 "table inet netimp {", "  chain pre {",
                 "    type filter hook prerouting priority -300; policy accept;"]
        if self.blocked:
            lines.append(f'    iifname "{ifname}" drop')
        elif loss > 0:
            proto = "meta l4proto udp " if self.loss_proto == "udp" else ""
            lines.append(f'    iifname "{ifname}" {proto}numgen random mod 100 < {int(round(loss))} drop')
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"

    def apply(self) -> None:
        """Installs the current settings in both namespaces (each atomically)."""
        self._ns(self.srv_ns, "nft", "-f", "-", input=self._rules(self.srv_if, self.up))
        self._ns(self.cli_ns, "nft", "-f", "-", input=self._rules(self.cli_if, self.down))

    def set_loss(self, up: float = 0, down: float = 0) -> None:
        """Random loss in % (integers 0-100): ``up`` clients -> server, ``down`` server -> clients."""
        for v in (up, down):
            if not 0 <= v <= 100:
                raise ValueError("loss is a percentage, 0-100")
        self.up, self.down = float(up), float(down)
        self.apply()
        self.history.append((time.monotonic(), f"loss up {up}% down {down}%"))

    def set_rate(self, up_kbit: float | None = None, down_kbit: float | None = None) -> None:
        """Limits the link's rate per direction in kbit/s (None: unlimited): ``up_kbit``
        clients -> server, ``down_kbit`` server -> clients. A tbf on each veth's egress
        (see the module's docstring); changing or lifting a limit takes effect at once."""
        for v in (up_kbit, down_kbit):
            if v is not None and v <= 0:
                raise ValueError("a rate is a positive number of kbit/s (None for no limit)")
        for ns, ifn, kbit in ((self.cli_ns, self.cli_if, up_kbit), (self.srv_ns, self.srv_if, down_kbit)):
            if kbit is None:
                self._ns(ns, "tc", "qdisc", "del", "dev", ifn, "root", check=False)
                continue
            bytes_per_s = kbit * 1000 / 8
            # Burst: 20 ms at the rate, at least two full-size packets (tbf needs one MTU).
            burst = max(3000, int(bytes_per_s / 50))
            limit = burst + int(bytes_per_s * RATE_QUEUE_MS / 1000)
            self._ns(ns, "tc", "qdisc", "replace", "dev", ifn, "root", "tbf", "rate", f"{int(kbit)}kbit",
                     "burst", str(burst), "limit", str(limit))
        self.up_kbit, self.down_kbit = up_kbit, down_kbit
        self.history.append((time.monotonic(), f"rate up {up_kbit} kbit/s down {down_kbit} kbit/s"))

    def outage(self) -> float:
        """Drops every packet both ways until ``restore()``; returns the monotonic start time."""
        self.blocked = True
        self.apply()
        t = time.monotonic()
        self.history.append((t, "outage"))
        return t

    def restore(self) -> float:
        """Ends an outage (the loss settings apply again); returns the monotonic time."""
        self.blocked = False
        self.apply()
        t = time.monotonic()
        self.history.append((t, "restored"))
        return t

    def dead_peer(self) -> float:
        """The clients' side vanishes for good: everything dropped both ways, never restored
        (``close()`` ends it). Kill the client peers too for a peer that is truly gone."""
        t = self.outage()
        self.history.append((t, "dead peer"))
        return t

    def _across(self, src: str, dst: str, recv: str, send: str, timeout: float) -> str:
        """Runs the Python script ``recv`` in namespace ``dst`` (it prints a line once it
        listens), then ``send`` in ``src``; returns what ``recv`` printed after."""
        rp = subprocess.Popen(["ip", "netns", "exec", dst, sys.executable, "-c", recv],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert rp.stdout is not None
            rp.stdout.readline()
            _run(["ip", "netns", "exec", src, sys.executable, "-c", send], timeout=timeout)
            out, _ = rp.communicate(timeout=10)
        finally:
            if rp.poll() is None:
                os.killpg(rp.pid, signal.SIGKILL)
                rp.wait(5)
        return out

    def measure_loss(self, direction: str = "up", n: int = 1000, port: int = 40999) -> float:
        """Sends ``n`` UDP datagrams over the link (``up``: clients -> server) and returns the
        fraction that did not arrive: a check of the impairment itself, not of the SDK."""
        src, dst, dst_ip = ((self.cli_ns, self.srv_ns, self.srv_ip) if direction == "up"
                            else (self.srv_ns, self.cli_ns, self.cli_ip))
        recv = ("import socket,sys\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('%s',%d));s.settimeout(1.0)\n"
                "print('ready',flush=True);n=0\n"
                "try:\n  while True:\n    s.recv(100);n+=1\nexcept socket.timeout:\n  pass\nprint(n)\n") % (dst_ip, port)
        send = ("import socket,time\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "for i in range(%d):\n  s.sendto(b'x'*60,('%s',%d))\n  time.sleep(0.0005)\n") % (n, dst_ip, port)
        out = self._across(src, dst, recv, send, timeout=30)
        return 1.0 - int(out.strip()) / n

    def measure_rate(self, direction: str = "up", seconds: float = 2.0, port: int = 40998) -> float:
        """Blasts UDP (1200-byte datagrams, well above any limit set) over the link for
        ``seconds`` and returns the kbit/s that arrived: a check of ``set_rate`` itself."""
        src, dst, dst_ip = ((self.cli_ns, self.srv_ns, self.srv_ip) if direction == "up"
                            else (self.srv_ns, self.cli_ns, self.cli_ip))
        recv = ("import socket,time\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('%s',%d));s.settimeout(1.0)\n"
                "print('ready',flush=True);n=0;t0=t1=None\n"
                "try:\n  while True:\n    b=s.recv(2000);t1=time.monotonic();t0=t0 or t1;n+=len(b)\n"
                "except socket.timeout:\n  pass\nprint(n, (t1 or 0)-(t0 or 0))\n") % (dst_ip, port)
        send = ("import socket,time\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);end=time.monotonic()+%f\n"
                "while time.monotonic()<end:\n  s.sendto(b'x'*1200,('%s',%d));time.sleep(0.001)\n") % (seconds, dst_ip, port)
        out = self._across(src, dst, recv, send, timeout=seconds + 20)
        n, span = out.split()
        return int(n) * 8 / 1000 / max(float(span), 1e-3)

    def counters(self) -> dict[str, str]:
        """The nftables rulesets with counters (debugging)."""
        return {ns: self._ns(ns, "nft", "list", "table", "inet", "netimp", check=False).stdout
                for ns in (self.srv_ns, self.cli_ns)}


@atexit.register
def _close_all() -> None:
    for lab in list(_open_labs):
        try:
            lab.close()
        except Exception:
            pass
