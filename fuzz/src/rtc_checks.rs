//! Checks run on one input by the `sdp_offer`, `sdp_answer` and `rtp_datagram` fuzz targets and
//! by the server's corpus test (`crates/daily-server/tests/corpus.rs`), which includes this file
//! by path. They drive str0m 0.24 exactly as `crates/daily-server/src/sfu.rs` does with client
//! input: same `RtcConfig` (rust-crypto, Opus only, one host candidate), same calls, outputs
//! drained after every mutation. Nothing here may panic for any input.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::rtp::rtcp::Rtcp;
use str0m::{Candidate, IceCreds, Input, Output, Rtc, RtcConfig};

/// The server's UDP address in these checks.
pub const SERVER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
/// Where datagrams of `rtp_datagram` come from.
pub const CLIENT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40001);

/// Fixed ICE credentials of the server side, so seeds can carry valid STUN checks.
pub const SERVER_UFRAG: &str = "fuzzsrv";
/// Password matching [`SERVER_UFRAG`].
pub const SERVER_PASS: &str = "fuzzserverpassword0123456789";

/// A client offer (made by `fuzz/examples/make_seeds.rs` with str0m) whose ICE credentials
/// and certificate fingerprint the `rtp_datagram` seeds were made with.
pub const CLIENT_OFFER: &str = include_str!("client_offer.sdp");

/// Placeholder in `sdp_answer` inputs replaced by the mid the server offered (mids are random).
pub const MID_PLACEHOLDER: &str = "$MID";

/// The server's `RtcConfig` (as `RoomServer::start` builds it), with fixed ICE credentials.
/// The DTLS certificate is made once per process: generating it per input would dominate.
pub fn server_config() -> RtcConfig {
    static CONFIG: OnceLock<RtcConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(str0m::crypto::from_feature_flags());
            let cert = provider
                .dtls_provider
                .generate_certificate()
                .expect("a DTLS certificate");
            RtcConfig::new()
                .set_crypto_provider(provider)
                .set_dtls_cert(cert)
                .clear_codecs()
                .enable_opus(true, false)
                .set_local_ice_credentials(IceCreds {
                    ufrag: SERVER_UFRAG.into(),
                    pass: SERVER_PASS.into(),
                })
        })
        .clone()
}

/// A fresh server-side transport with its host candidate (`Sfu::new_transport`).
pub fn server_rtc(now: Instant) -> Rtc {
    let mut rtc = server_config().build(now);
    rtc.add_local_candidate(Candidate::host(SERVER_ADDR, "udp").expect("host candidate"));
    rtc
}

/// Drains `poll_output` as `Transport::drain` does: bounded, an error disconnects.
pub fn drain(rtc: &mut Rtc) {
    for _ in 0..100_000 {
        if !rtc.is_alive() {
            return;
        }
        match rtc.poll_output() {
            Ok(Output::Timeout(_)) => return,
            Ok(Output::Transmit(t)) => assert!(!t.contents.is_empty()),
            Ok(Output::Event(_)) => {}
            Err(_) => rtc.disconnect(),
        }
    }
    panic!("poll_output never reached Timeout");
}

/// The parsing half of [`sdp_offer`]: `SdpOffer::from_sdp_string`, and re-parsing what a
/// parsed offer serialises to. That need not succeed: str0m 0.24 does not round-trip every
/// odd SDP it accepts (docs/fuzzing.md), and the server never re-serialises client SDP.
pub fn sdp_offer_parse(data: &[u8]) -> Option<SdpOffer> {
    let text = std::str::from_utf8(data).ok()?;
    let offer = SdpOffer::from_sdp_string(text).ok()?;
    let _ = SdpOffer::from_sdp_string(&offer.to_sdp_string());
    Some(offer)
}

/// `publishOffer`: [`sdp_offer_parse`], then `accept_offer` on a fresh server transport, as
/// the server does; an answer it makes parses.
pub fn sdp_offer(data: &[u8]) {
    let Some(offer) = sdp_offer_parse(data) else {
        return;
    };
    let now = Instant::now();
    let mut rtc = server_rtc(now);
    if let Ok(answer) = rtc.sdp_api().accept_offer(offer) {
        let sdp = answer.to_sdp_string();
        // Known str0m 0.24 defect (docs/fuzzing.md): an offered m-line with no codec str0m
        // supports is answered as `m=audio 0 UDP/TLS/RTP/SAVPF ` with no format, which its own
        // parser (and RFC 8866) refuses. Any other unparsable answer is a new finding.
        if SdpAnswer::from_sdp_string(&sdp).is_err() {
            assert!(
                has_formatless_m_line(&sdp),
                "the server's answer does not parse:\n{sdp}"
            );
        }
    }
    drain(&mut rtc);
    let _ = rtc.handle_input(Input::Timeout(now + Duration::from_millis(100)));
    drain(&mut rtc);
}

/// Whether an `m=` line lists no format (`m=<media> <port> <proto>` and nothing after).
pub fn has_formatless_m_line(sdp: &str) -> bool {
    sdp.lines()
        .any(|l| l.starts_with("m=") && l.split_whitespace().count() < 4)
}

/// The parsing half of [`sdp_answer`]: `SdpAnswer::from_sdp_string`, and re-parsing its
/// serialisation (which may fail, as for offers).
pub fn sdp_answer_parse(data: &[u8]) -> Option<SdpAnswer> {
    let text = std::str::from_utf8(data).ok()?;
    let answer = SdpAnswer::from_sdp_string(text).ok()?;
    let _ = SdpAnswer::from_sdp_string(&answer.to_sdp_string());
    Some(answer)
}

/// `subscribeAnswer`: [`sdp_answer_parse`] (as received: the server parses before anything
/// else), then `accept_answer` against a server offer of one `sendonly` audio m-line (what
/// `Sfu::negotiate` sends). [`MID_PLACEHOLDER`] in the input becomes that m-line's mid.
pub fn sdp_answer(data: &[u8]) {
    if sdp_answer_parse(data).is_none() {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = Instant::now();
    let mut rtc = server_rtc(now);
    let mut api = rtc.sdp_api();
    let mid = api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("participant".into()),
        Some("track".into()),
        None,
    );
    let (_offer, pending) = api.apply().expect("an offer with one m-line");
    drain(&mut rtc);
    let text = text.replace(MID_PLACEHOLDER, &mid.to_string());
    let Ok(answer) = SdpAnswer::from_sdp_string(&text) else {
        return;
    };
    let _ = rtc.sdp_api().accept_answer(pending, answer);
    drain(&mut rtc);
    let _ = rtc.handle_input(Input::Timeout(now + Duration::from_millis(100)));
    drain(&mut rtc);
}

/// The parsing half of [`rtp_datagram`]: the driver's demux (`DatagramRecv::try_from`, which
/// parses STUN) and str0m's public RTCP parser, on every datagram.
pub fn datagram_parse(data: &[u8]) {
    for d in datagrams(data) {
        let _ = Rtcp::try_from(d);
        let _ = DatagramRecv::try_from(d);
    }
}

/// Splits `data` into datagrams: each is a 2-byte big-endian length and that many bytes (the
/// last one takes what is left).
pub fn datagrams(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let n = n.min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

/// Frames datagrams for [`datagrams`].
pub fn frame_datagrams<'a>(datagrams: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for d in datagrams {
        let n = u16::try_from(d.len()).expect("datagram under 64 KiB");
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// UDP input: every datagram goes through the demux parser the server's driver runs
/// (`DatagramRecv::try_from`, which parses STUN), str0m's public RTCP parser, and then into a
/// server send transport that accepted [`CLIENT_OFFER`] (`Input::Receive` + drain, 10 ms apart
/// with timeouts in between), which parses RTP headers, STUN and DTLS records.
pub fn rtp_datagram(data: &[u8]) {
    let base = Instant::now();
    let mut rtc = server_rtc(base);
    let offer = SdpOffer::from_sdp_string(CLIENT_OFFER).expect("the seed offer parses");
    rtc.sdp_api()
        .accept_offer(offer)
        .expect("the seed offer is accepted");
    drain(&mut rtc);
    for (i, d) in datagrams(data).into_iter().enumerate().take(256) {
        let _ = Rtcp::try_from(d);
        let Ok(contents) = DatagramRecv::try_from(d) else {
            continue;
        };
        let now = base + Duration::from_millis(10 * (i as u64 + 1));
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: CLIENT_ADDR,
                destination: SERVER_ADDR,
                contents,
            },
        );
        // The server only feeds a transport that `accepts` the datagram; a peer past ICE gets
        // everything through, so feed both ways.
        let _ = rtc.accepts(&input);
        if rtc.is_alive() {
            let _ = rtc.handle_input(input);
            drain(&mut rtc);
            let _ = rtc.handle_input(Input::Timeout(now + Duration::from_millis(5)));
            drain(&mut rtc);
        }
    }
}
