//! Hostile signalling against a real server on loopback: every bad input closes only the
//! connection that sent it (after a fatal `error` where `docs/signalling.md` says so), within a
//! bounded time, while a well-behaved participant in the same room carries on: it still sees
//! others join and leave, and its own `setUserName` is still echoed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Client, Next, participant_id};
use daily_proto::{ClientMessage, MAX_MESSAGE_BYTES, ServerMessage};
use daily_server::{
    JOIN_TIMEOUT, MAX_OUTBOUND_BYTES, MAX_TRACKS_PER_PARTICIPANT, RoomServer, SEND_TIMEOUT,
    ServerConfig,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Upper bound for a hostile connection to be closed once its input is sent.
const CLOSE_BOUND: Duration = Duration::from_secs(15);

/// A server with one well-behaved participant, `alice`, who reads everything.
struct Room {
    server: RoomServer,
    alice: Client,
    alice_id: String,
    renames: u32,
}

impl Room {
    async fn new() -> Room {
        let server = RoomServer::start(ServerConfig::default()).expect("server starts");
        let (alice, joined) = Client::join(server.local_addr(), "r", "alice").await;
        Room {
            alice_id: participant_id(&joined),
            server,
            alice,
            renames: 0,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// A participant that joins (alice sees it arrive); returns it and its id.
    async fn joined(&mut self, name: &str) -> (Client, String) {
        let (c, joined) = Client::join(self.addr(), "r", name).await;
        let id = participant_id(&joined);
        self.alice_sees(|m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.id == id))
            .await;
        (c, id)
    }

    /// Reads alice's messages until one matches (others, e.g. a flood of updates, are skipped).
    async fn alice_sees(&mut self, want: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        for _ in 0..200_000 {
            let m = self.alice.recv().await;
            if want(&m) {
                return m;
            }
        }
        panic!("alice never saw the expected message");
    }

    /// Like [`Room::alice_sees_left`], but waits up to `within` even if nothing arrives.
    async fn alice_sees_left_within(&mut self, id: &str, within: Duration) {
        let wait = async {
            loop {
                match self.alice.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        if let Ok(ServerMessage::ParticipantLeft { participant, .. }) =
                            ServerMessage::parse(t.as_str())
                            && participant.id == id
                        {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("alice's connection ended: {other:?}"),
                }
            }
        };
        tokio::time::timeout(within, wait)
            .await
            .expect("alice did not see the participant leave in time");
    }

    async fn alice_sees_left(&mut self, id: &str) {
        self.alice_sees(|m| matches!(m, ServerMessage::ParticipantLeft { participant, .. } if participant.id == id))
            .await;
    }

    /// Alice's own requests still work and she still sees others come and go.
    async fn alice_still_served(&mut self) {
        self.renames += 1;
        let name = format!("alice-{}", self.renames);
        self.alice
            .send(&ClientMessage::SetUserName {
                user_name: name.clone(),
            })
            .await;
        let id = self.alice_id.clone();
        self.alice_sees(|m| {
            matches!(m, ServerMessage::ParticipantUpdated { participant }
                if participant.id == id && participant.user_name == name)
        })
        .await;
        let (mut carol, carol_id) = self.joined("carol").await;
        carol.send(&ClientMessage::Leave).await;
        self.alice_sees_left(&carol_id).await;
    }
}

/// Waits (bounded) for `c` to be closed; returns the messages before the close.
async fn closed(c: &mut Client) -> Vec<ServerMessage> {
    tokio::time::timeout(CLOSE_BOUND, c.until_closed())
        .await
        .expect("the hostile connection was not closed in time")
}

/// Waits for `c` to be closed after a fatal `error`.
async fn closed_fatally(c: &mut Client, what: &str) {
    let msgs = closed(c).await;
    assert!(
        matches!(msgs.last(), Some(ServerMessage::Error { fatal: true, .. })),
        "{what}: expected a fatal error before the close, got {msgs:?}"
    );
}

fn text_frame(bytes: Vec<u8>) -> Message {
    Message::Frame(Frame::message(bytes, OpCode::Data(Data::Text), true))
}

/// Inputs that must fail to parse (checked here, so each case tests what it says) and be fatal.
fn unparsable_messages() -> Vec<(&'static str, String)> {
    let nested = format!(
        r#"{{"type":"appMessage","requestId":1,"data":{}1{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let cases: Vec<(&str, String)> = vec![
        ("invalid JSON", "{\"type\":\"setUserName\",".into()),
        ("not an object", "[1,2,3]".into()),
        ("empty frame", String::new()),
        ("unknown type", r#"{"type":"selfDestruct"}"#.into()),
        ("no type", r#"{"userName":"x"}"#.into()),
        ("missing field", r#"{"type":"setUserName"}"#.into()),
        (
            "wrong field type",
            r#"{"type":"setUserName","userName":42}"#.into(),
        ),
        (
            "wrong tracks type",
            r#"{"type":"publishOffer","sdp":"v=0","tracks":{"mid":"0"}}"#.into(),
        ),
        (
            "null sdp",
            r#"{"type":"subscribeAnswer","sdp":null}"#.into(),
        ),
        ("deeply nested array", "[".repeat(100_000)),
        ("deeply nested object", r#"{"a":"#.repeat(20_000)),
        ("deeply nested app data", nested),
        // The new request messages with malformed payloads (parse failures only).
        (
            "appMessage without data",
            r#"{"type":"appMessage","requestId":1}"#.into(),
        ),
        (
            "appMessage string requestId",
            r#"{"type":"appMessage","requestId":"1","data":{}}"#.into(),
        ),
        (
            "appMessage negative requestId",
            r#"{"type":"appMessage","requestId":-1,"data":{}}"#.into(),
        ),
        (
            "appMessage huge requestId",
            r#"{"type":"appMessage","requestId":18446744073709551616,"data":{}}"#.into(),
        ),
        (
            "appMessage numeric to",
            r#"{"type":"appMessage","requestId":1,"data":1,"to":7}"#.into(),
        ),
        (
            "setSubscriptions without rules",
            r#"{"type":"setSubscriptions","requestId":1}"#.into(),
        ),
        (
            "setSubscriptions non-bool rule",
            r#"{"type":"setSubscriptions","requestId":1,"rules":{"base":{"microphone":"yes"}}}"#
                .into(),
        ),
        (
            "setSubscriptions array participants",
            r#"{"type":"setSubscriptions","requestId":1,"rules":{"participants":[1]}}"#.into(),
        ),
        (
            "updatePermissions without permissions",
            r#"{"type":"updatePermissions","requestId":1}"#.into(),
        ),
        (
            "updatePermissions string canSend",
            r#"{"type":"updatePermissions","requestId":1,"permissions":{"canSend":"microphone"}}"#
                .into(),
        ),
        (
            "updatePermissions numeric hasPresence",
            r#"{"type":"updatePermissions","requestId":1,"permissions":{"hasPresence":1}}"#.into(),
        ),
        (
            "eject without ids",
            r#"{"type":"eject","requestId":1}"#.into(),
        ),
        (
            "eject object ids",
            r#"{"type":"eject","requestId":1,"participantIds":{"a":1}}"#.into(),
        ),
        (
            "eject numeric ids",
            r#"{"type":"eject","requestId":1,"participantIds":[1,2]}"#.into(),
        ),
    ];
    for (what, text) in &cases {
        assert!(ClientMessage::parse(text).is_err(), "{what} parses");
    }
    cases
}

#[tokio::test]
async fn unparsable_messages_close_only_their_connection() {
    let mut room = Room::new().await;
    for (what, text) in unparsable_messages() {
        // After joining: fatal error, close, alice sees it leave.
        let (mut m, id) = room.joined("mallory").await;
        m.send_text(text.clone()).await;
        closed_fatally(&mut m, what).await;
        room.alice_sees_left(&id).await;
        // As the first message: fatal error, close.
        let mut m = Client::connect(room.addr(), "r").await;
        m.send_text(text).await;
        closed_fatally(&mut m, what).await;
    }
    room.alice_still_served().await;
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let mut room = Room::new().await;

    // Binary frame.
    let (mut m, id) = room.joined("mallory").await;
    m.ws.send(Message::Binary(vec![0x7b, 0x7d].into()))
        .await
        .unwrap();
    closed_fatally(&mut m, "binary frame").await;
    room.alice_sees_left(&id).await;

    // Invalid UTF-8 in a text frame: the WebSocket layer refuses it (RFC 6455 section 8.1);
    // the connection is dropped.
    let (mut m, id) = room.joined("mallory").await;
    m.ws.send(text_frame(
        b"{\"type\":\"setUserName\",\"userName\":\"\xff\xfe\"}".to_vec(),
    ))
    .await
    .unwrap();
    closed(&mut m).await;
    room.alice_sees_left(&id).await;
    room.alice_still_served().await;

    // Invalid UTF-8 before join.
    let mut m = Client::connect(room.addr(), "r").await;
    m.ws.send(text_frame(vec![0xc3, 0x28])).await.unwrap();
    closed(&mut m).await;

    // Just over MAX_MESSAGE_BYTES: an error (too large), then the close.
    let (mut m, id) = room.joined("mallory").await;
    let big = format!(
        r#"{{"type":"setUserName","userName":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES - 35)
    );
    assert_eq!(big.len(), MAX_MESSAGE_BYTES + 1);
    m.send_text(big).await;
    let msgs = closed(&mut m).await;
    match msgs.last() {
        Some(ServerMessage::Error {
            message,
            fatal: true,
        }) => {
            assert!(message.contains("exceeds"), "{message}")
        }
        other => panic!("expected a fatal size error, got {other:?}"),
    }
    room.alice_sees_left(&id).await;

    // Over the WebSocket limit (4x): dropped without a message. The send itself may fail once
    // the server has closed.
    let (mut m, id) = room.joined("mallory").await;
    let _ =
        m.ws.send(Message::Text("y".repeat(4 * MAX_MESSAGE_BYTES + 1).into()))
            .await;
    closed(&mut m).await;
    room.alice_sees_left(&id).await;

    // Exactly MAX_MESSAGE_BYTES of a valid message is accepted.
    let (mut m, _) = room.joined("mallory").await;
    let name = "n".repeat(MAX_MESSAGE_BYTES - 36);
    let exact = format!(r#"{{"type":"setUserName","userName":"{name}"}}"#);
    assert_eq!(exact.len(), MAX_MESSAGE_BYTES);
    m.send_text(exact).await;
    // (The name is over the 1024-byte name limit: refused with an error that, since issue 16,
    // does not end the call.)
    match m.recv().await {
        ServerMessage::Error {
            message,
            fatal: false,
        } => {
            assert!(message.contains("userName"), "{message}")
        }
        other => panic!("expected the userName error, got {other:?}"),
    }
    m.send(&ClientMessage::Leave).await;
    room.alice_still_served().await;
}

#[tokio::test]
async fn protocol_order_violations_are_fatal() {
    let mut room = Room::new().await;
    // Before join: anything but join.
    for m0 in [
        ClientMessage::SetUserName {
            user_name: "x".into(),
        },
        ClientMessage::SubscribeAnswer {
            sdp: "v=0\r\n".into(),
        },
        ClientMessage::PublishOffer {
            sdp: "v=0\r\n".into(),
            tracks: vec![],
        },
    ] {
        let mut m = Client::connect(room.addr(), "r").await;
        m.send(&m0).await;
        closed_fatally(&mut m, "message before join").await;
    }
    // A second join.
    let (mut m, id) = room.joined("mallory").await;
    m.send(&ClientMessage::Join {
        protocol_version: 1,
        user_name: None,
        token: None,
        subscriptions: None,
    })
    .await;
    closed_fatally(&mut m, "second join").await;
    room.alice_sees_left(&id).await;
    // subscribeAnswer with no offer outstanding (with an SDP that parses, and one that does not).
    for sdp in [answer_sdp(), "garbage".into()] {
        let (mut m, id) = room.joined("mallory").await;
        m.send(&ClientMessage::SubscribeAnswer { sdp }).await;
        closed_fatally(&mut m, "unsolicited subscribeAnswer").await;
        room.alice_sees_left(&id).await;
    }
    room.alice_still_served().await;
}

/// A syntactically valid SDP answer with one audio m-line.
fn answer_sdp() -> String {
    let mut s = String::from(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         a=msid-semantic: WMS\r\n",
    );
    s.push_str(&audio_m_line("0", "recvonly"));
    s
}

fn audio_m_line(mid: &str, dir: &str) -> String {
    format!(
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n\
         a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=mid:{mid}\r\na={dir}\r\n\
         a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:{ssrc} cname:x\r\n",
        fp = ["AB"; 32].join(":"),
        ssrc = 1000 + mid.len() * 7 + mid.bytes().map(u32::from).sum::<u32>() as usize,
    )
}

/// An offer with `n` sending audio m-lines (mids `0..n`).
fn offer_sdp(n: usize) -> String {
    let mids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n\
         a=msid-semantic: WMS\r\n",
        mids.join(" ")
    );
    for mid in &mids {
        s.push_str(&audio_m_line(mid, "sendonly"));
    }
    s
}

#[tokio::test]
async fn hostile_publish_offers() {
    let mut room = Room::new().await;
    // Garbage SDPs (with an m-line, so they reach the SDP parser).
    for sdp in [
        "m=audio".to_owned(),
        "v=0\r\nm=audio garbage\r\n".into(),
        format!("v=0\r\n{}", "m=audio 9 X 1\r\n".repeat(5000)),
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\u{0}\u{ffff}\r\n".into(),
    ] {
        let (mut m, id) = room.joined("mallory").await;
        m.send(&ClientMessage::PublishOffer {
            sdp,
            tracks: vec![],
        })
        .await;
        closed_fatally(&mut m, "garbage SDP").await;
        room.alice_sees_left(&id).await;
    }
    // More tracks than allowed.
    let (mut m, id) = room.joined("mallory").await;
    let n = MAX_TRACKS_PER_PARTICIPANT + 1;
    let tracks = (0..n)
        .map(|i| daily_proto::PublishedTrack {
            mid: i.to_string(),
            track_id: format!("t{i}"),
            source: daily_proto::TrackSource::CustomAudio {
                track_name: format!("c{i}"),
            },
            ignore_audio_level: false,
        })
        .collect();
    m.send(&ClientMessage::PublishOffer {
        sdp: offer_sdp(n),
        tracks,
    })
    .await;
    closed_fatally(&mut m, "too many tracks").await;
    room.alice_sees_left(&id).await;

    // An SDP with far more m-lines than MAX_TRACKS_PER_PARTICIPANT but a short `tracks` list:
    // the server refuses it (fatal) before parsing, within the bound, and alice is not
    // disturbed.
    let (mut m, id) = room.joined("mallory").await;
    let sdp = offer_sdp(400);
    assert!(sdp.len() < MAX_MESSAGE_BYTES);
    m.send(&ClientMessage::PublishOffer {
        sdp,
        tracks: vec![],
    })
    .await;
    let first = tokio::time::timeout(CLOSE_BOUND, m.next())
        .await
        .expect("an answer or an error in time");
    match first {
        Next::Msg(ServerMessage::Error { fatal: true, message }) if message.contains("m-lines") => {
            closed(&mut m).await;
        }
        other => panic!("{other:?}"),
    }
    room.alice_sees_left(&id).await;
    room.alice_still_served().await;

    // An offer without Opus: str0m would answer with an m-line the client cannot parse, so the
    // server refuses it plainly.
    let (mut m, id) = room.joined("mallory").await;
    let sdp = offer_sdp(1).replace("opus/48000/2", "PCMU/8000").replace("opus/48000", "PCMU/8000");
    assert!(!sdp.to_ascii_lowercase().contains("opus/48000"));
    m.send(&ClientMessage::PublishOffer { sdp, tracks: vec![] }).await;
    match tokio::time::timeout(CLOSE_BOUND, m.next()).await.expect("an error in time") {
        Next::Msg(ServerMessage::Error { fatal: true, message }) if message.contains("no Opus") => {
            closed(&mut m).await;
        }
        other => panic!("{other:?}"),
    }
    room.alice_sees_left(&id).await;
    room.alice_still_served().await;
}

#[tokio::test]
async fn a_connection_that_never_joins_is_dropped() {
    let mut room = Room::new().await;
    let mut m = Client::connect(room.addr(), "r").await;
    let msgs = tokio::time::timeout(JOIN_TIMEOUT + CLOSE_BOUND, async {
        let mut seen = Vec::new();
        loop {
            match m.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    seen.push(ServerMessage::parse(t.as_str()).expect("server JSON"))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return seen,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("not dropped after JOIN_TIMEOUT");
    assert!(
        matches!(msgs.as_slice(), [ServerMessage::Error { fatal: true, .. }]),
        "{msgs:?}"
    );
    room.alice_still_served().await;
}

#[tokio::test]
async fn a_flood_of_valid_messages() {
    let mut room = Room::new().await;
    let (mut m, id) = room.joined("mallory").await;
    const N: usize = 10_000;
    // Mallory floods without reading; the replies wait in the server (well under the backlog
    // limit: about 10k x 400 bytes). Since issue 16 participant updates are rate limited: a
    // burst goes through, the rest is answered with a (non-fatal) error each.
    for i in 0..N {
        m.send(&ClientMessage::SetUserName {
            user_name: format!("m{i}"),
        })
        .await;
    }
    // Once the bucket refilled, one more rename goes through: Alice sees it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let last = "m-last".to_owned();
    m.send(&ClientMessage::SetUserName {
        user_name: last.clone(),
    })
    .await;
    room.alice_sees(|msg| {
        matches!(msg, ServerMessage::ParticipantUpdated { participant }
            if participant.id == id && participant.user_name == last)
    })
    .await;
    // Mallory then reads her echoes and refusals: one answer per rename, connection intact.
    let (mut echoes, mut limited) = (0, 0);
    loop {
        match tokio::time::timeout(CLOSE_BOUND, m.next())
            .await
            .expect("echoes in time")
        {
            Next::Msg(ServerMessage::ParticipantUpdated { participant })
                if participant.id == id =>
            {
                echoes += 1;
                if participant.user_name == last {
                    break;
                }
            }
            Next::Msg(ServerMessage::Error {
                message,
                fatal: false,
            }) if message.contains("rate limited") => limited += 1,
            Next::Msg(_) => {}
            Next::Closed => panic!("flooding connection closed after {echoes} echoes"),
        }
    }
    assert_eq!(echoes + limited, N + 1);
    assert!(limited > N - 100, "{limited} of {N} refused");
    room.alice_still_served().await;
}

/// Joins as `name` over a socket with small kernel buffers (64 KiB), so what the server has
/// for this client piles up in the server's queue rather than in loopback buffers (tens of MB).
async fn join_small_buffers(room: &mut Room, name: &str) -> (Client, String) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    sock.set_send_buffer_size(64 * 1024).unwrap();
    let stream = sock.connect(room.addr()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://{}/ws/r", room.addr()),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let (c, joined) = Client { ws, keep_meta: false }.send_join(name).await;
    let id = participant_id(&joined);
    room.alice_sees(
        |m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.id == id),
    )
    .await;
    (c, id)
}

/// A real client offer (str0m, one `sendonly` audio m-line) and its mid.
fn real_offer() -> (String, String) {
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(std::sync::Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_opus(true, false)
        .build(std::time::Instant::now());
    let addr = "127.0.0.1:9".parse().unwrap();
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendOnly,
        None,
        None,
        None,
    );
    let (offer, _) = api.apply().unwrap();
    (offer.to_sdp_string(), mid.to_string())
}

/// Sends `publishOffer`s whose 16 `tracks` entries name no m-line of the offer, each with a
/// 15 KB track id: the server answers each with a `publishAnswer` and 16 non-fatal errors
/// quoting the track ids (about 240 KB), to the sender alone. Stops when the server drops the
/// connection, or after `max` offers; returns how many were sent.
async fn self_flood(
    mut tx: futures_util::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
    max: usize,
    sent: Arc<AtomicUsize>,
) -> usize {
    let (sdp, mid) = real_offer();
    let tracks: Vec<_> = (0..MAX_TRACKS_PER_PARTICIPANT)
        .map(|i| daily_proto::PublishedTrack {
            mid: format!("{mid}-not-{i}"),
            track_id: format!("{i}{}", "t".repeat(15_000)),
            source: daily_proto::TrackSource::Microphone,
            ignore_audio_level: false,
        })
        .collect();
    let json = ClientMessage::PublishOffer { sdp, tracks }.to_json();
    // Enough to pass the backlog limit with room to spare (socket buffers, slow reading).
    assert!(max * 16 * 15_000 > 8 * MAX_OUTBOUND_BYTES);
    assert!(json.len() <= MAX_MESSAGE_BYTES);
    for i in 0..max {
        if tx.send(Message::Text(json.clone().into())).await.is_err() {
            return i;
        }
        sent.store(i + 1, Ordering::SeqCst);
    }
    max
}

/// Offers the flood may send: well over MAX_OUTBOUND_BYTES plus what socket buffers hold.
const FLOOD_OFFERS: usize = 400;

/// A client that never reads while the server has plenty for it (its own replies): the server
/// drops it (write timeout or backlog limit) and everybody else carries on.
#[tokio::test]
async fn a_client_that_stops_reading_is_dropped() {
    let mut room = Room::new().await;
    let (m, mallory_id) = join_small_buffers(&mut room, "mallory").await;
    let (m_tx, _m_rx) = m.ws.split(); // never read
    let flood = tokio::spawn(self_flood(m_tx, FLOOD_OFFERS, Arc::default()));
    // Not dropped means alice never sees it leave.
    room.alice_sees_left_within(&mallory_id, Duration::from_secs(120))
        .await;
    flood.await.unwrap();
    room.alice_still_served().await;
}

/// A client that keeps reading, but slower than it is sent to: each write completes within
/// SEND_TIMEOUT, so only the backlog limit (MAX_OUTBOUND_BYTES) stops its queue from growing
/// for as long as the flood lasts. Once the flood is sent the client reads as fast as it can:
/// without the limit it would get every reply (and stay connected).
#[tokio::test]
async fn a_client_that_reads_too_slowly_is_dropped() {
    let mut room = Room::new().await;
    let (m, mallory_id) = join_small_buffers(&mut room, "mallory").await;
    let (m_tx, mut m_rx) = m.ws.split();
    let sent = Arc::new(AtomicUsize::new(0));
    let flood_done = Arc::new(AtomicBool::new(false));
    let done = flood_done.clone();
    let reader = tokio::spawn(async move {
        let mut frames = 0usize;
        loop {
            if !done.load(Ordering::SeqCst) {
                // About 0.75 MB/s of 15 KB frames: slower than the replies come.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            match tokio::time::timeout(SEND_TIMEOUT * 4, m_rx.next()).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => {
                    return frames;
                }
                Ok(Some(Ok(_))) => frames += 1,
            }
        }
    });
    let sent_offers = self_flood(m_tx, FLOOD_OFFERS, sent).await;
    flood_done.store(true, Ordering::SeqCst);
    room.alice_sees_left_within(&mallory_id, Duration::from_secs(120))
        .await;
    let frames = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("mallory's socket closed")
        .unwrap();
    // One publishAnswer and 16 errors per offer.
    assert!(
        frames < 17 * sent_offers,
        "mallory got all {frames} replies to {sent_offers} offers: the backlog was not limited"
    );
    room.alice_still_served().await;
}
