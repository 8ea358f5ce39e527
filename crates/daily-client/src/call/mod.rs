//! A call: [`CallClient`] joins a room on a daily-server over WebSocket signalling and two
//! WebRTC peer connections (webrtc-rs): the send transport (we offer) and the receive
//! transport (the server offers). `docs/signalling.md` is the protocol.
//!
//! - `core.rs`: [`CallCore`], the IO-free state machine that knows Daily's rules (no IO, no
//!   clock reads; driven by `handle_*`, drained by `poll_*`), with `roster.rs` (participants,
//!   announced once each) and `settings.rs` (Daily's settings dicts and patches);
//! - `client.rs`: the public [`CallClient`], a thin shell that feeds the core and carries out
//!   its output in order;
//! - `session.rs`: the IO of one session (signalling socket, ordered transport work);
//! - `core/link.rs`: outages survived in a call (signalling resumed, ICE restarted), with
//!   the timeouts that bound them;
//! - `publish.rs` / `route.rs`: the send and receive sides on webrtc-rs and the media clock;
//! - `types.rs`: states, typed events, settings types.

mod client;
mod core;
mod interceptor;
mod pacer;
mod publish;
mod resend;
mod roster;
mod route;
mod session;
mod settings;
#[cfg(test)]
mod link_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod recording_tests;
mod types;

pub use self::core::{
    CONNECT_TIMEOUT, CallCore, CompletionId, ICE_RESTART_AFTER, ICE_RESTART_INTERVAL, MEDIA_LOST_LIMIT, Output, RECONNECT_INTERVAL,
    RESUME_LIMIT, SendTrackSpec, SourceHandle, TransportCommand,
};
pub use publish::{ICE_CONSENT_INTERVAL, ICE_DISCONNECTED_AFTER, ICE_FAILED_AFTER};
pub use session::{SIGNALLING_PING_INTERVAL, SIGNALLING_SILENCE_LIMIT};
pub use client::CallClient;
pub(crate) use client::{ClientInner, attach_recorder, detach_recorder, state_of};
pub use settings::{SendSettings, VideoSendSettings, check, validate_custom_track_name, validate_user_name};
pub use types::{CallState, ClientEvent, Connection, Done, EventSink, IceConfig, IceServer, InputChange, JoinDone, JoinSettings, Participant};
