//! Runs the recording core (`daily_client::record::RecordCore`) for N ticks of a 2-party call
//! (user: one 48 kHz receive pipeline, bot: one 16 kHz source; output 16 kHz) so that
//! callgrind can count its instructions per 10 ms: run it with two tick counts and divide the
//! difference (benches/README.md, "Client-side recording").
//!
//!     cargo build --release -p daily-client --example record_core_cost
//!     valgrind --tool=callgrind target/release/examples/record_core_cost 1000 [stereo|turns|wav]

use daily_client::record::{RecordConfig, RecordCore, Track};

fn main() {
    let mut args = std::env::args().skip(1);
    let ticks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mode = args.next().unwrap_or_default();
    let cfg = RecordConfig {
        sample_rate: 16_000,
        num_channels: if mode == "stereo" { 2 } else { 1 },
        buffer_size: 32_000,
        user_continuous_stream: true,
        enable_turn_audio: mode == "turns",
    };
    let mut core =
        RecordCore::new(cfg, 0, mode != "wav", mode == "wav" || mode == "stereo").unwrap();
    core.add_tap(1, Track::User, 48_000, 1).unwrap();
    core.add_tap(2, Track::Bot, 16_000, 1).unwrap();
    let user: Vec<i16> = (0..480)
        .map(|n| ((n as f64 * 0.05).sin() * 8000.0) as i16)
        .collect();
    let bot: Vec<i16> = (0..160)
        .map(|n| ((n as f64 * 0.11).sin() * 8000.0) as i16)
        .collect();
    let mut out = 0usize;
    for t in 0..ticks {
        core.handle_frame(1, t, &user);
        core.handle_frame(2, t, &bot);
        if t % 2 == 0 {
            core.poll(t + 1);
            out += core.take_merged().len();
            core.take_merged().clear();
            while core.poll_output().is_some() {}
        }
    }
    core.finish(ticks);
    println!("{} ticks, {} merged samples", core.emitted_ticks(), out);
}
