//! Network stats from real RTCP on a loopback room server: a bot publishes a tone, a listener
//! receives it. The bot's send figures (bit rate, loss, RTT) come from the receiver reports the
//! server sends about its stream; the listener's receive figures from its inbound stream.

use daily_client::{AudioSource, CallClient, ClientEvent, Engine, JoinSettings};
use daily_server::{RoomServer, ServerConfig};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

fn join(client: &CallClient, url: &str, settings: JoinSettings) {
    let (tx, rx) = mpsc::channel();
    client.join(url, None, settings, Box::new(move |r| {
        let _ = tx.send(r.map(|_| ()));
    }));
    rx.recv_timeout(Duration::from_secs(15)).expect("join completes").expect("join succeeds");
}

fn leave(client: &CallClient) {
    let (tx, rx) = mpsc::channel();
    client.leave(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv_timeout(Duration::from_secs(10)).expect("leave completes").expect("leave succeeds");
}

/// Records the network events a client emits.
#[derive(Default)]
struct Recorded {
    stats: Mutex<Vec<Value>>,
    status: Mutex<Vec<Value>>,
}

fn client(engine: &Engine) -> (CallClient, Arc<Recorded>) {
    let rec = Arc::new(Recorded::default());
    let r = rec.clone();
    let c = CallClient::new(
        engine,
        Arc::new(move |ev| match ev {
            ClientEvent::NetworkStatsUpdated(v) => r.stats.lock().unwrap().push(v),
            e @ ClientEvent::NetworkConnectionStatusUpdated { .. } => r.status.lock().unwrap().push(e.args().remove(0)),
            _ => {}
        }),
    );
    (c, rec)
}

fn num(v: &Value, key: &str) -> f64 {
    v["stats"]["latest"][key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn network_stats_come_from_rtcp_on_a_real_call() {
    let server = RoomServer::start(ServerConfig::default()).expect("server");
    let url = server.room_url("net-stats");
    let engine = Engine::start(2).expect("engine");
    let (listener, heard) = client(&engine);
    let (bot, sent) = client(&engine);
    let default = json!({"quality": 100, "threshold": "good", "stats": {"latest": {}}});
    assert_eq!(bot.network_stats(), default, "before joining");

    let source = AudioSource::new(&engine, 48_000, 1, true).expect("source");
    join(&listener, &url, JoinSettings::default());
    let settings = JoinSettings { microphone: Some(("mic".into(), source.clone().into())), ..Default::default() };
    join(&bot, &url, settings);

    // A writer keeps ~100 ms of a 440 Hz tone queued.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (source, stop) = (source.clone(), stop.clone());
        std::thread::spawn(move || {
            let tone: Vec<u8> = (0..480)
                .flat_map(|i| (((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin() * 8000.0) as i16).to_le_bytes())
                .collect();
            while !stop.load(Ordering::Relaxed) {
                if source.queued_frames() < 4800 {
                    source.write_with_completion(&tone, Box::new(|_| {})).expect("write");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Wait (bounded) until the bot has a receiver report from the server (send jitter known)
    // with a round-trip time in it (the server had seen one of our sender reports), and both
    // have seen at least two intervals with media flowing. The server reports on audio every
    // 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (bot_stats, listener_stats) = loop {
        let b = bot.network_stats();
        let l = listener.network_stats();
        let ready = b["stats"]["latest"]["audioSendJitter"].is_number()
            && b["stats"]["latest"]["networkRoundTripTime"].is_number()
            && b["stats"]["latest"]["audioSendBitsPerSecond"].as_f64().unwrap_or(0.0) > 0.0
            && l["stats"]["latest"]["audioRecvBitsPerSecond"].as_f64().unwrap_or(0.0) > 0.0
            && sent.stats.lock().unwrap().len() >= 2
            && heard.stats.lock().unwrap().len() >= 2;
        if ready || Instant::now() > deadline {
            break (b, l);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!("bot: {bot_stats}\nlistener: {listener_stats}");

    // The bot's send side.
    let send_bps = num(&bot_stats, "audioSendBitsPerSecond");
    assert!((10_000.0..=200_000.0).contains(&send_bps), "audioSendBitsPerSecond {send_bps}");
    assert_eq!(num(&bot_stats, "sendBitsPerSecond"), send_bps);
    let rtt = num(&bot_stats, "networkRoundTripTime");
    assert!((0.0..0.1).contains(&rtt), "networkRoundTripTime {rtt} s on loopback");
    assert_eq!(num(&bot_stats, "audioSendPacketLoss"), 0.0);
    assert_eq!(num(&bot_stats, "totalSendPacketLoss"), 0.0);
    assert_eq!(bot_stats["stats"]["worstAudioSendPacketLoss"], 0.0);
    assert!(bot_stats["stats"]["averageNetworkRoundTripTime"].as_f64().is_some_and(|a| a < 0.1));
    assert_eq!(bot_stats["threshold"], "good");
    assert_eq!(bot_stats["quality"], 100);
    assert_eq!(num(&bot_stats, "videoSendBitsPerSecond"), 0.0);
    let ts = num(&bot_stats, "timestamp");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    assert!((now_ms - 60_000.0..=now_ms).contains(&ts), "timestamp {ts} is not a recent epoch time in ms");

    // The listener's receive side.
    let recv_bps = num(&listener_stats, "audioRecvBitsPerSecond");
    assert!(recv_bps > 0.0, "audioRecvBitsPerSecond {recv_bps}");
    assert_eq!(num(&listener_stats, "recvBitsPerSecond"), recv_bps);
    assert_eq!(num(&listener_stats, "audioRecvPacketLoss"), 0.0);
    // The listener publishes nothing: no send loss is known.
    assert_eq!(listener_stats["stats"]["latest"]["audioSendPacketLoss"], Value::Null);

    // Events: every 2 s, the same shape as the getter.
    let events = sent.stats.lock().unwrap().clone();
    assert!(events.len() >= 2, "{} NetworkStatsUpdated events", events.len());
    assert!(events.iter().all(|e| e["stats"]["latest"]["timestamp"].is_number() && e["threshold"].is_string()));
    let status = sent.status.lock().unwrap().clone();
    assert!(status.contains(&json!({"connection": "sendTransport", "event": "connected"})), "bot status events {status:?}");
    let status = heard.status.lock().unwrap().clone();
    assert!(status.contains(&json!({"connection": "recvTransport", "event": "connected"})), "listener status events {status:?}");
    assert_eq!(status.iter().filter(|s| s["event"] == "connected" && s["connection"] == "recvTransport").count(), 1);

    // After leaving: the default again, and no more updates.
    leave(&bot);
    assert_eq!(bot.network_stats(), default, "after leaving");
    let n = sent.stats.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(sent.stats.lock().unwrap().len(), n, "NetworkStatsUpdated after leave");
    listener.release();
    bot.release();
}
