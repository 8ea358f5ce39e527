//! Forwarding cost, measured on the in-memory world: real CPU time spent inside the SFU's
//! `handle_udp` / `handle_timeout` (ICE, DTLS, SRTP both ways, RTCP and forwarding) divided by
//! the frames it forwarded. Not a pass/fail test: run it by hand in release mode,
//!
//! ```text
//! cargo test --release -p daily-server forwarding_cost -- --ignored --nocapture
//! ```
//!
//! and record the figures in the report that changes the hot path.

use std::time::Duration;

use super::harness::World;

#[test]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
fn forwarding_cost() {
    for subscribers in [1usize, 10, 30] {
        let mut w = World::new();
        let a = w.join("room", "talker");
        w.publish_mic(a);
        w.talk(a, Some(-30));
        for i in 0..subscribers {
            w.join("room", &format!("listener-{i}"));
        }
        // Warm-up: handshakes and negotiation out of the way.
        w.run_for(Duration::from_secs(2));
        let (busy0, out0) = (w.sfu_busy, w.sfu.stats().frames_out);
        w.run_for(Duration::from_secs(20));
        let busy = w.sfu_busy - busy0;
        let out = w.sfu.stats().frames_out - out0;
        println!(
            "forwarding_cost: {subscribers} subscribers: {out} frames forwarded, SFU busy {:.1} ms, {:.0} ns per forwarded frame",
            busy.as_secs_f64() * 1e3,
            busy.as_nanos() as f64 / out.max(1) as f64
        );
    }
}
