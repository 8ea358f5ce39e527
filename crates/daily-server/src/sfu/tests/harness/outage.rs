//! Outages and restarts for [`World`]: lost signalling, `resume`, a cut network, an ICE
//! restart of a send transport.

use daily_proto::{ClientMessage, PublishedTrack, TrackSource};

use super::{SFU_ADDR, World};
use crate::sfu::{Command, ConnId, Sfu, SfuConfig};

impl World {
    /// A world whose SFU has `config`.
    pub fn with_config(config: SfuConfig) -> World {
        let rtc = crate::sfu::rtc_config().expect("DTLS certificate");
        World {
            sfu: Sfu::new(SFU_ADDR, rtc).with_config(config),
            ..World::new()
        }
    }

    /// Client `index`'s signalling connection ends: `clean` as after a close frame, else lost
    /// (the participant is detached).
    pub fn disconnect(&mut self, index: usize, clean: bool) {
        let conn = self.clients[index].conn;
        self.clients[index].detached = true;
        self.sfu
            .handle_command(self.now, Command::Closed { conn, clean });
        self.settle();
    }

    /// Client `index` resumes on a new connection with `token` (its own when `None`).
    pub fn resume(&mut self, index: usize, token: Option<&str>) -> Result<ConnId, String> {
        let c = &self.clients[index];
        let token = token.unwrap_or(&c.resume_token).to_owned();
        let r = self
            .sfu
            .resume(self.now, &c.room, &c.session_id, &c.id, &token);
        if r.is_ok() {
            self.clients[index].detached = false;
        }
        self.settle();
        r
    }

    /// Cuts (or restores) client `index`'s network: its datagrams are lost both ways.
    pub fn cut(&mut self, index: usize, cut: bool) {
        self.clients[index].cut = cut;
    }

    /// Client `index` restarts ICE on its send transport: a `publishOffer` with new
    /// credentials and the same tracks.
    pub fn restart_send_ice(&mut self, index: usize) -> String {
        let c = &self.clients[index];
        let mid = c.mic.expect("a microphone");
        let track = PublishedTrack {
            mid: mid.to_string(),
            track_id: format!("mic-{}", c.id),
            source: TrackSource::Microphone,
            ignore_audio_level: false,
        };
        self.restart_send_ice_with(index, vec![track])
    }

    /// Like [`World::restart_send_ice`], listing `tracks`.
    pub fn restart_send_ice_with(&mut self, index: usize, tracks: Vec<PublishedTrack>) -> String {
        let c = &mut self.clients[index];
        let mut api = c.send.rtc.sdp_api();
        let creds = api.ice_restart(true);
        let (offer, pending) = api.apply().expect("an offer");
        c.send.drain(&mut self.net);
        c.pending_publish = Some(pending);
        self.send(
            index,
            ClientMessage::PublishOffer {
                sdp: offer.to_sdp_string(),
                tracks,
            },
        );
        creds.ufrag
    }
}
