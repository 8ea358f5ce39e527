//! The audio path runs on the media clock thread and must not allocate (house rule: no
//! allocation, locks or Python on the audio path). A counting global allocator counts every
//! allocation made on the clock thread while a real call runs on a loopback room server: a bot
//! publishes a 24 kHz source, a listener renders it at 16 kHz and 48 kHz and a selected speaker
//! device receives the mix. Set-up (joining, adding nodes) may allocate; the steady state may not.

use daily_client::{AudioSource, CallClient, ClientEvent, Engine, JoinSettings, SpeakerDevice};
use daily_client::record::{RecordConfig, RecordEvent, RecordSink, Recorder, Track};
use daily_server::{RoomServer, ServerConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

struct Counting;

static ON_CLOCK_ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if daily_client::on_clock_thread() {
            ON_CLOCK_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if daily_client::on_clock_thread() {
            ON_CLOCK_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn join(client: &CallClient, url: &str, settings: JoinSettings) {
    let (tx, rx) = mpsc::channel();
    client.join(url, None, settings, Box::new(move |r| {
        let _ = tx.send(r.map(|_| ()));
    }));
    rx.recv_timeout(Duration::from_secs(15)).expect("join completes").expect("join succeeds");
}

#[test]
fn steady_state_call_does_not_allocate_on_the_clock_thread() {
    let server = RoomServer::start(ServerConfig::default()).expect("server");
    let url = server.room_url("no-alloc");
    let engine = Engine::start(2).expect("engine");

    let (joined_tx, joined_rx) = mpsc::channel::<String>();
    let joined_tx = Mutex::new(joined_tx);
    let listener = CallClient::new(
        &engine,
        Arc::new(move |ev| {
            if let ClientEvent::ParticipantJoined(p) = ev {
                let _ = joined_tx.lock().unwrap().send(p.info.id.clone());
            }
        }),
    );
    let bot = CallClient::new(&engine, Arc::new(|_| {}));
    let source = AudioSource::new(&engine, 24_000, 1, true).expect("source");
    let speaker = SpeakerDevice::new(&engine, 16_000, 1).expect("speaker");
    engine.select_speaker(&speaker);

    join(&listener, &url, JoinSettings::default());
    let settings = JoinSettings { microphone: Some(("mic".into(), source.clone().into())), ..Default::default() };
    join(&bot, &url, settings);
    let bot_id = joined_rx.recv_timeout(Duration::from_secs(10)).expect("bot joined");

    let rendered = Arc::new(AtomicUsize::new(0));
    for (rate, ms) in [(16_000, 20), (48_000, 10)] {
        let r = rendered.clone();
        listener
            .set_audio_renderer(&bot_id, "microphone", rate, ms, Arc::new(move |pcm: &[i16]| {
                r.fetch_add(pcm.len(), Ordering::Relaxed);
            }))
            .expect("renderer");
    }

    // Both clients record (issue 19): the listener's receive pipeline and the bot's send pipe
    // carry taps through the measured window, with turn detection on.
    let energy = |track: Track| {
        let e = Arc::new(AtomicUsize::new(0));
        let e2 = e.clone();
        let sink: RecordSink = Box::new(move |ev| {
            if let RecordEvent::Audio { user, bot } = ev {
                let pcm = if track == Track::User { user } else { bot };
                e2.fetch_add(pcm.iter().filter(|s| s.unsigned_abs() > 100).count(), Ordering::Relaxed);
            }
        });
        (e, sink)
    };
    let cfg = RecordConfig { sample_rate: 16_000, num_channels: 1, buffer_size: 3_200, user_continuous_stream: true, enable_turn_audio: true };
    let (heard_by_listener, sink) = energy(Track::User);
    let rec_listener = Recorder::start(&listener, cfg, None, true, sink).expect("recorder");
    let (sent_by_bot, sink) = energy(Track::Bot);
    let rec_bot = Recorder::start(&bot, cfg, None, true, sink).expect("recorder");

    // A writer thread keeps ~100 ms queued with completions, like pipecat.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (source, stop) = (source.clone(), stop.clone());
        std::thread::spawn(move || {
            let tone: Vec<u8> = (0..480).flat_map(|i| (((i as f32 * 0.05).sin() * 8000.0) as i16).to_le_bytes()).collect();
            while !stop.load(Ordering::Relaxed) {
                if source.queued_frames() < 2400 {
                    source.write_with_completion(&tone, Box::new(|_| {})).expect("write");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let reader = {
        let (speaker, stop) = (speaker.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut frames = 0usize;
            while !stop.load(Ordering::Relaxed) {
                frames += speaker.read_blocking(320).len();
            }
            frames
        })
    };

    std::thread::sleep(Duration::from_secs(2)); // warm-up: joins, renderers attached
    let before = ON_CLOCK_ALLOCS.load(Ordering::Relaxed);
    let rendered_before = rendered.load(Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let allocs = ON_CLOCK_ALLOCS.load(Ordering::Relaxed) - before;
    let rendered_in_window = rendered.load(Ordering::Relaxed) - rendered_before;
    let secs = t0.elapsed().as_secs_f64();

    stop.store(true, Ordering::Relaxed);
    rec_listener.stop();
    rec_bot.stop();
    writer.join().unwrap();
    let bot_leave = {
        let (tx, rx) = mpsc::channel();
        bot.leave(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        rx
    };
    let _ = bot_leave.recv_timeout(Duration::from_secs(5));
    let heard = reader.join().unwrap();
    listener.release();
    bot.release();

    // The counter works: attaching renderers grew a Vec on the clock thread during set-up.
    assert!(before > 0, "no set-up allocation was seen on the clock thread: is the counter wired?");
    // Both renderers ran all along: 16 kHz + 48 kHz = 64 000 samples per second.
    assert!(rendered_in_window as f64 >= 0.9 * 64_000.0 * secs, "rendered {rendered_in_window} samples in {secs:.2} s");
    assert!(heard > 16_000, "speaker delivered {heard} samples");
    assert_eq!(allocs, 0, "{allocs} allocations on the media clock thread in {secs:.2} s of a call");
    // The taps were live: the recordings hold the tone, received and sent.
    assert!(heard_by_listener.load(Ordering::Relaxed) > 16_000, "the listener's recording heard the bot");
    assert!(sent_by_bot.load(Ordering::Relaxed) > 16_000, "the bot's recording holds what it sent");
}
