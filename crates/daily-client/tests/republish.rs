//! Publishing off and on again mid-call: the listener's renderer resumes every time. The server
//! reuses the freed m-line of the receive transport for the re-published track, so this checks
//! that the client rebinds a reused m-line (it once stayed silent in some runs).

use daily_client::{AudioSource, CallClient, Engine, JoinSettings};
use daily_server::{RoomServer, ServerConfig};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

fn done_wait(f: impl FnOnce(daily_client::Done)) -> Result<(), daily_client::ClientError> {
    let (tx, rx) = mpsc::channel();
    f(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv_timeout(Duration::from_secs(15)).expect("completion fires")
}

fn join(client: &CallClient, url: &str, settings: JoinSettings) {
    let (tx, rx) = mpsc::channel();
    client.join(url, None, settings, Box::new(move |r| {
        let _ = tx.send(r.map(|_| ()));
    }));
    rx.recv_timeout(Duration::from_secs(15)).expect("join completes").expect("join succeeds");
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn renderer_resumes_after_publishing_off_and_on() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = RoomServer::start(ServerConfig::default()).expect("server");
    let engine = Engine::start(2).expect("engine");
    for round in 0..4 {
        let url = server.room_url(&format!("republish-{round}"));
        let listener = CallClient::new(&engine, Arc::new(|_| {}));
        let bot = CallClient::new(&engine, Arc::new(|_| {}));
        let source = AudioSource::new(&engine, 16_000, 1, true).expect("source");
        join(&listener, &url, JoinSettings::default());
        join(&bot, &url, JoinSettings { microphone: Some(("mic".into(), source.clone().into())), ..Default::default() });
        let bot_id = bot.participants()["local"]["id"].as_str().unwrap().to_owned();
        let chunks = Arc::new(AtomicUsize::new(0));
        let c = chunks.clone();
        listener
            .set_audio_renderer(&bot_id, "microphone", 16_000, 20, Arc::new(move |_| {
                c.fetch_add(1, Ordering::Relaxed);
            }))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, source) = (stop.clone(), source.clone());
            std::thread::spawn(move || {
                let tone: Vec<u8> =
                    (0..320).flat_map(|i| (((i as f32 * 0.17).sin() * 8000.0) as i16).to_le_bytes()).collect();
                while !stop.load(Ordering::Relaxed) {
                    let _ = source.write_blocking(&tone);
                }
            })
        };
        wait_for("first audio", Duration::from_secs(10), || chunks.load(Ordering::Relaxed) > 20);
        for flip in 0..2 {
            done_wait(|d| bot.update_publishing(&json!({"microphone": {"isPublishing": false}}), d)).unwrap();
            std::thread::sleep(Duration::from_millis(300 * flip + 200));
            done_wait(|d| bot.update_publishing(&json!({"microphone": {"isPublishing": true}}), d)).unwrap();
            let n = chunks.load(Ordering::Relaxed);
            wait_for(&format!("audio to resume (round {round}, flip {flip})"), Duration::from_secs(5), || {
                chunks.load(Ordering::Relaxed) > n + 20
            });
        }
        stop.store(true, Ordering::Relaxed);
        source.clear_queue();
        writer.join().unwrap();
        bot.release();
        listener.release();
    }
}
