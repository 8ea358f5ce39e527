//! Writes the SDP and UDP seeds of the fuzz corpus and `src/client_offer.sdp`:
//! `cargo run --example make_seeds` from `fuzz/` (no sanitizer flags needed).
//!
//! A str0m client (the stack the server runs, Opus only) offers one `sendonly` audio m-line to a
//! server transport built by `rtc_checks::server_rtc`, they connect over an in-memory "network"
//! (ICE, DTLS, then 20 Opus-sized RTP packets), and every client-to-server datagram is recorded
//! as the `rtp_datagram` seed. The client's answer to a server `subscribeOffer` is the
//! `sdp_answer` seed (its mid replaced by `$MID`). The output differs each run (random keys).

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daily_fuzz::rtc_checks::{
    CLIENT_ADDR, MID_PLACEHOLDER, SERVER_ADDR, frame_datagrams, server_rtc,
};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

fn client_rtc(now: Instant) -> Rtc {
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_opus(true, false)
        .build(now);
    rtc.add_local_candidate(Candidate::host(CLIENT_ADDR, "udp").unwrap());
    rtc
}

/// Drains `rtc`; returns its datagrams and whether it reported `Connected`.
fn drain(rtc: &mut Rtc) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut connected = false;
    loop {
        match rtc.poll_output().unwrap() {
            Output::Timeout(_) => return (out, connected),
            Output::Transmit(t) => out.push(t.contents.to_vec()),
            Output::Event(Event::Connected) => connected = true,
            Output::Event(_) => {}
        }
    }
}

fn feed(
    rtc: &mut Rtc,
    now: Instant,
    from: std::net::SocketAddr,
    to: std::net::SocketAddr,
    d: &[u8],
) {
    let r = Receive::new(Protocol::Udp, from, to, d).unwrap();
    rtc.handle_input(Input::Receive(now, r)).unwrap();
}

fn main() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let now0 = Instant::now();

    // Send transport: client offers.
    let mut client = client_rtc(now0);
    let mut api = client.sdp_api();
    let mid = api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("p".into()),
        Some("t".into()),
        None,
    );
    let (offer, pending) = api.apply().unwrap();
    let offer_sdp = offer.to_sdp_string();
    fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/client_offer.sdp"),
        &offer_sdp,
    )
    .unwrap();
    fs::create_dir_all(corpus.join("sdp_offer")).unwrap();
    fs::write(corpus.join("sdp_offer/str0m_client_offer.sdp"), &offer_sdp).unwrap();

    let mut server = server_rtc(now0);
    let answer = server
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer_sdp).unwrap())
        .unwrap();
    client
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer.to_sdp_string()).unwrap(),
        )
        .unwrap();

    let mut recorded: Vec<Vec<u8>> = Vec::new();
    let mut now = now0;
    let mut connected = false;
    let mut sent = 0u64;
    for _ in 0..2000 {
        now += Duration::from_millis(5);
        client.handle_input(Input::Timeout(now)).unwrap();
        server.handle_input(Input::Timeout(now)).unwrap();
        if connected && sent < 20 {
            if let Some(w) = client.writer(mid) {
                let pt = w.payload_params().next().unwrap().pt();
                w.write(
                    pt,
                    now,
                    MediaTime::new(sent * 960, Frequency::FORTY_EIGHT_KHZ),
                    vec![0xf8, 0xff, 0xfe],
                )
                .unwrap();
                sent += 1;
            }
        }
        let (to_server, c) = drain(&mut client);
        connected |= c;
        for d in &to_server {
            feed(&mut server, now, CLIENT_ADDR, SERVER_ADDR, d);
        }
        recorded.extend(to_server);
        let (to_client, _) = drain(&mut server);
        for d in &to_client {
            feed(&mut client, now, SERVER_ADDR, CLIENT_ADDR, d);
        }
        if sent >= 20 {
            break;
        }
    }
    assert!(connected && sent >= 20, "the seed session did not connect");
    fs::create_dir_all(corpus.join("rtp_datagram")).unwrap();
    let all = frame_datagrams(recorded.iter().map(|d| d.as_slice()));
    fs::write(corpus.join("rtp_datagram/session.bin"), &all).unwrap();
    for (i, d) in recorded.iter().enumerate().take(12) {
        fs::write(
            corpus.join(format!("rtp_datagram/dgram{i:02}.bin")),
            frame_datagrams([d.as_slice()]),
        )
        .unwrap();
    }

    // Receive transport: server offers, client answers.
    let mut server = server_rtc(now0);
    let mut api = server.sdp_api();
    let smid = api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("p".into()),
        Some("t".into()),
        None,
    );
    let (offer, _pending) = api.apply().unwrap();
    let mut client = client_rtc(now0);
    let answer = client
        .sdp_api()
        .accept_offer(offer)
        .unwrap()
        .to_sdp_string();
    fs::create_dir_all(corpus.join("sdp_answer")).unwrap();
    fs::write(
        corpus.join("sdp_answer/str0m_client_answer.sdp"),
        answer.replace(&smid.to_string(), MID_PLACEHOLDER),
    )
    .unwrap();
    println!(
        "{} datagrams, offer {} bytes, answer {} bytes",
        recorded.len(),
        offer_sdp.len(),
        answer.len()
    );
}
