//! Server-side recording, the recorder's part (the SFU's is `sfu/recording.rs`): one thread,
//! `daily-recorder`, that takes the SFU's [`RecordCmd`]s over a channel and writes, for each
//! recording, a directory `<recordings dir>/<recording id>/` holding
//! - one Ogg/Opus file per audio track, the RTP payloads as received (`core.rs` says how gaps
//!   and reordering are handled);
//! - `mix.ogg`, every track decoded, mixed and re-encoded (mono, 48 kHz);
//! - `recording.json`, the metadata the REST API serves (`GET /v1/recordings/{id}`): Daily's
//!   recording object plus each track's file and start offset, rewritten when a track appears
//!   and when the recording ends.
//!
//! Why a thread and not the SFU's task: file IO blocks (a slow or full disk), and decoding,
//! mixing and encoding cost CPU per 10 ms; neither may delay forwarding. The SFU only copies a
//! packet's reference-counted payload into the channel. The channel is unbounded for the few
//! control orders but holds at most [`MAX_QUEUED_PACKETS`] packets: past that (the disk or
//! the thread stalled for seconds) packets are dropped and counted, never waited for.
//!
//! When a write fails (the disk is full), that recording stops: every file is cut back to its
//! last complete Ogg page (so it decodes), the metadata says `"ended_by": "error"` with the
//! reason, and the SFU is told ([`Sfu::handle_recorder_failed`](crate::sfu)), which sends
//! `recordingError` and `recordingStopped` to the room.

pub(crate) mod catalog;
pub(crate) mod core;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use daily_media::{OggOpusHeader, OggOpusWriter};
use serde_json::{Value, json};

use self::catalog::Catalog;
use self::core::{Output, RecordingCore};
use crate::sfu::{RecordCmd, StopReason};

/// Most packets waiting in the channel for the recorder thread (about 40 s of one 20 ms track,
/// 20 s of two); more are dropped.
pub const MAX_QUEUED_PACKETS: usize = 2048;

/// The pre-skip of every file (see `OggFile::create`), in 48 kHz samples.
const PRE_SKIP: u16 = 312;

/// Longest the thread sleeps with nothing to do.
const IDLE: Duration = Duration::from_millis(500);

/// Called from the recorder thread when a recording failed: `(key, message)`.
pub(crate) type OnFailed = Box<dyn Fn(u64, String) + Send>;

/// The SFU side's handle on the recorder thread.
pub(crate) struct Recorder {
    tx: Option<mpsc::Sender<RecordCmd>>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the thread writing under `catalog`'s directory.
    pub(crate) fn start(catalog: Arc<Catalog>, on_failed: OnFailed) -> std::io::Result<Recorder> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let thread = std::thread::Builder::new()
            .name("daily-recorder".into())
            .spawn(move || Worker::new(catalog, on_failed, q).run(rx))?;
        Ok(Recorder {
            tx: Some(tx),
            queued,
            dropped: Arc::new(AtomicU64::new(0)),
            thread: Some(thread),
        })
    }

    /// Hands over one order; never blocks. A packet is dropped when
    /// [`MAX_QUEUED_PACKETS`] are waiting.
    pub(crate) fn send(&self, cmd: RecordCmd) {
        let Some(tx) = &self.tx else { return };
        if matches!(cmd, RecordCmd::Packet { .. }) {
            if self.queued.load(Ordering::Relaxed) >= MAX_QUEUED_PACKETS {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n + 1, "recorder behind: packets dropped");
                }
                return;
            }
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
        let _ = tx.send(cmd);
    }

    /// Closes the channel and waits for the thread to finish every file (blocking).
    pub(crate) fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the recorder thread panicked");
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A file written through [`OggOpusWriter`] that remembers where the page being written
/// began, so that after a failed write it can be cut back to its last complete page. The
/// `ogg` crate writes each page as several `write_all` calls, the first being the 27-byte page
/// header that starts with the capture pattern `OggS`.
struct PageFile {
    file: File,
    len: u64,
    page_start: u64,
}

impl Write for PageFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() == 27 && buf.starts_with(b"OggS") {
            self.page_start = self.len;
        }
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl PageFile {
    fn create(path: &Path) -> std::io::Result<PageFile> {
        Ok(PageFile {
            file: File::create(path)?,
            len: 0,
            page_start: 0,
        })
    }

    /// After a failed write: drops the incomplete page at the end.
    fn cut_to_last_page(&mut self) {
        if self.file.set_len(self.page_start).is_ok() {
            let _ = self.file.seek(std::io::SeekFrom::Start(self.page_start));
            self.len = self.page_start;
        }
    }
}

/// One open Ogg/Opus file.
struct OggFile {
    writer: Option<OggOpusWriter<PageFile>>,
}

impl OggFile {
    fn create(path: &Path, serial: u32) -> Result<OggFile, String> {
        let file = PageFile::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // Network audio is sampled at 48 kHz as far as the file can tell. Pre-skip: libopus's
        // encoder look-ahead at 48 kHz (312 samples, 6.5 ms), what the mix's encoder has and
        // what WebRTC senders (libopus) have; players drop that much decoder warm-up, and
        // opusinfo flags a stream without it.
        let mut header = OggOpusHeader::new(1, 48_000);
        header.pre_skip = PRE_SKIP;
        let w = OggOpusWriter::new(file, serial, &header)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(OggFile { writer: Some(w) })
    }

    fn packet(&mut self, p: &[u8]) -> Result<(), daily_media::MediaError> {
        match &mut self.writer {
            Some(w) => w.write_packet(p).map(|_| ()),
            None => Ok(()),
        }
    }

    fn silence(&mut self, frames: u64) -> Result<(), daily_media::MediaError> {
        match &mut self.writer {
            Some(w) => w.write_silence(frames).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Ends the stream (end-of-stream page); on failure cuts the file back to its last
    /// complete page.
    fn close(&mut self) -> Result<(), String> {
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        match w.finish() {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Abandons the stream after a failed write: the file keeps its complete pages only.
    fn abandon(&mut self) {
        if let Some(w) = self.writer.take() {
            let mut f = w.into_inner();
            f.cut_to_last_page();
        }
    }
}

/// A recording the thread is writing.
struct Active {
    id: String,
    dir: PathBuf,
    core: RecordingCore,
    start: Instant,
    mix: OggFile,
    tracks: HashMap<u32, OggFile>,
    meta: Value,
    max_participants: usize,
    failed: bool,
}

struct Worker {
    catalog: Arc<Catalog>,
    on_failed: OnFailed,
    queued: Arc<AtomicUsize>,
    active: HashMap<u64, Active>,
}

impl Worker {
    fn new(catalog: Arc<Catalog>, on_failed: OnFailed, queued: Arc<AtomicUsize>) -> Worker {
        Worker {
            catalog,
            on_failed,
            queued,
            active: HashMap::new(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<RecordCmd>) {
        loop {
            let now = Instant::now();
            let deadline = self
                .active
                .values()
                .map(|a| a.core.poll_timeout())
                .min()
                .unwrap_or(now + IDLE)
                .min(now + IDLE);
            match rx.recv_timeout(deadline.saturating_duration_since(now)) {
                Ok(cmd) => self.handle(cmd),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            let keys: Vec<u64> = self
                .active
                .iter()
                .filter(|(_, a)| a.core.poll_timeout() <= now)
                .map(|(k, _)| *k)
                .collect();
            for k in keys {
                if let Some(a) = self.active.get_mut(&k) {
                    a.core.handle_timeout(now);
                }
                self.write_out(k);
            }
        }
        // The server is stopping without having stopped these (it normally does first).
        let keys: Vec<u64> = self.active.keys().copied().collect();
        for k in keys {
            self.stop(k, StopReason::ServerStopped, Instant::now());
        }
    }

    fn handle(&mut self, cmd: RecordCmd) {
        match cmd {
            RecordCmd::Start {
                key,
                status,
                room,
                session_id,
                at,
                participants,
            } => self.start(key, status, room, session_id, at, participants),
            RecordCmd::Track {
                key,
                track,
                participant_id,
                user_name,
                source,
                track_name,
            } => self.track(key, track, participant_id, user_name, source, track_name),
            RecordCmd::Packet {
                key,
                track,
                seq,
                rtp_ts,
                payload,
                at,
            } => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                if let Some(a) = self.active.get_mut(&key) {
                    a.core.handle_packet(track, at, seq, rtp_ts, payload);
                    self.write_out(key);
                }
            }
            RecordCmd::Participants { key, count } => {
                if let Some(a) = self.active.get_mut(&key) {
                    a.max_participants = a.max_participants.max(count);
                }
            }
            RecordCmd::Stop { key, reason, at } => self.stop(key, reason, at),
        }
    }

    fn start(
        &mut self,
        key: u64,
        status: daily_proto::RecordingStatus,
        room: String,
        session_id: String,
        at: Instant,
        participants: usize,
    ) {
        let id = status.recording_id.clone();
        let dir = self.catalog.dir().join(&id);
        let meta = json!({
            "id": id,
            "room_name": room,
            "start_ts": status.start_ts,
            "status": "in-progress",
            "max_participants": participants,
            "duration": null,
            "mtgSessionId": session_id,
            "type": "raw-tracks",
            "stream_id": status.stream_id,
            "started_by": status.started_by,
            "ended_by": null,
            "error": null,
            "mix": {"file": "mix.ogg", "channels": 1, "sample_rate": 48_000},
            "tracks": [],
        });
        let made = std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))
            .and_then(|_| OggFile::create(&dir.join("mix.ogg"), 0));
        let core = RecordingCore::new(at);
        let (mix, core) = match (made, core) {
            (Ok(m), Ok(c)) => (m, c),
            (Err(e), _) => return self.fail_to_start(key, &id, meta, e),
            (_, Err(e)) => return self.fail_to_start(key, &id, meta, e.to_string()),
        };
        let mut a = Active {
            id,
            dir,
            core,
            start: at,
            mix,
            tracks: HashMap::new(),
            meta,
            max_participants: participants,
            failed: false,
        };
        if let Err(e) = self.save_meta(&mut a) {
            a.failed = true;
            a.mix.abandon();
            self.catalog.put(a.meta.clone());
            return (self.on_failed)(key, format!("cannot write the recording's metadata: {e}"));
        }
        self.active.insert(key, a);
    }

    fn fail_to_start(&mut self, key: u64, id: &str, mut meta: Value, e: String) {
        tracing::warn!(recording = %id, error = %e, "cannot start the recording");
        meta["status"] = json!("finished");
        meta["ended_by"] = json!("error");
        meta["error"] = json!(e);
        meta["duration"] = json!(0);
        self.catalog.put(meta);
        (self.on_failed)(key, format!("cannot start the recording: {e}"));
    }

    fn track(
        &mut self,
        key: u64,
        track: u32,
        participant_id: String,
        user_name: String,
        source: String,
        track_name: Option<String>,
    ) {
        let Some(a) = self.active.get_mut(&key) else {
            return;
        };
        if a.failed {
            return;
        }
        let mut label = source.clone();
        if let Some(n) = &track_name {
            let clean: String = n
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
            label = format!("{label}-{clean}");
        }
        let file = format!("track-{track:02}-{participant_id}-{label}.ogg");
        match OggFile::create(&a.dir.join(&file), track + 1) {
            Ok(f) => {
                a.tracks.insert(track, f);
            }
            Err(e) => return self.fail(key, e),
        }
        if let Some(list) = a.meta["tracks"].as_array_mut() {
            list.push(json!({
                "id": format!("track-{track:02}"),
                "type": "audio",
                "participant_id": participant_id,
                "user_name": user_name,
                "source": source,
                "track_name": track_name,
                "file": file,
                "start_offset_ms": null,
                "duration_ms": 0,
                "size": 0,
            }));
        }
        if let Err(e) = self.save_meta_of(key) {
            self.fail(key, format!("cannot write the recording's metadata: {e}"));
        }
    }

    /// Writes what the core produced for recording `key`.
    fn write_out(&mut self, key: u64) {
        let Some(a) = self.active.get_mut(&key) else {
            return;
        };
        let mut error = None;
        while let Some(o) = a.core.poll_output() {
            if a.failed || error.is_some() {
                continue;
            }
            let r = match &o {
                Output::TrackStarted { track, offset_ms } => {
                    set_track(&mut a.meta, *track, "start_offset_ms", json!(offset_ms));
                    Ok(())
                }
                Output::TrackPacket { track, packet, .. } => match a.tracks.get_mut(track) {
                    Some(f) => f.packet(packet),
                    None => Ok(()),
                },
                Output::TrackSilence { track, frames } => match a.tracks.get_mut(track) {
                    Some(f) => f.silence(*frames),
                    None => Ok(()),
                },
                Output::MixPacket { packet, .. } => a.mix.packet(packet),
            };
            if let Err(e) = r {
                error = Some(e.to_string());
            }
        }
        if let Some(e) = error {
            self.fail(key, e);
        }
    }

    /// A write failed: every file of the recording is cut to its last complete page, the
    /// metadata records the error, and the SFU is told.
    fn fail(&mut self, key: u64, message: String) {
        let Some(mut a) = self.active.remove(&key) else {
            return;
        };
        tracing::warn!(recording = %a.id, error = %message, "recording failed");
        a.failed = true;
        a.mix.abandon();
        for f in a.tracks.values_mut() {
            f.abandon();
        }
        let now = Instant::now();
        self.finish_meta(&mut a, now, "error", Some(&message));
        (self.on_failed)(key, format!("the recording stopped: {message}"));
    }

    fn stop(&mut self, key: u64, reason: StopReason, at: Instant) {
        let Some(a) = self.active.get_mut(&key) else {
            return;
        };
        a.core.finish(at);
        self.write_out(key);
        let Some(mut a) = self.active.remove(&key) else {
            return; // Failed while writing the last packets.
        };
        let mut error = a.mix.close().err();
        for f in a.tracks.values_mut() {
            if let Err(e) = f.close() {
                error.get_or_insert(e);
            }
        }
        match error {
            None => self.finish_meta(&mut a, at, reason.as_str(), None),
            Some(e) => {
                self.finish_meta(&mut a, at, "error", Some(&e));
                (self.on_failed)(key, format!("the recording could not be finished: {e}"));
            }
        }
        tracing::info!(recording = %a.id, dir = %a.dir.display(), "recording finished");
    }

    /// Final metadata: status, duration, how it ended, each track's length and size.
    fn finish_meta(&mut self, a: &mut Active, at: Instant, ended_by: &str, error: Option<&str>) {
        let secs = at.saturating_duration_since(a.start).as_secs_f64();
        a.meta["status"] = json!("finished");
        a.meta["duration"] = json!(secs.round() as u64);
        a.meta["duration_ms"] = json!((secs * 1000.0).round() as u64);
        a.meta["ended_by"] = json!(ended_by);
        a.meta["error"] = json!(error);
        a.meta["max_participants"] = json!(a.max_participants);
        a.meta["mix"]["duration_ms"] = json!(a.core.mix_frames() / 48);
        a.meta["mix"]["size"] = json!(file_size(&a.dir.join("mix.ogg")));
        let n = a.meta["tracks"].as_array().map_or(0, Vec::len);
        for i in 0..n {
            let file = a.meta["tracks"][i]["file"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            a.meta["tracks"][i]["size"] = json!(file_size(&a.dir.join(&file)));
            if let Some(st) = a.core.track_stats(i as u32) {
                let t = &mut a.meta["tracks"][i];
                t["duration_ms"] = json!(st.frames / 48);
                t["packets"] = json!(st.packets);
                t["packets_lost"] = json!(st.lost);
                t["packets_late"] = json!(st.late);
                t["silence_ms"] = json!(st.silence_frames / 48);
            }
            if let Some(js) = a.core.mix_stats(i as u32) {
                // How the track fared in the mix's jitter buffer.
                a.meta["tracks"][i]["mix"] = json!({
                    "concealed_ms": js.concealed_frames / 48,
                    "late_dropped": js.late_dropped,
                    "discarded": js.discarded,
                    "lost": js.lost,
                    "jitter_ms": js.jitter_ms,
                });
            }
        }
        if let Err(e) = self.save_meta(a) {
            tracing::warn!(recording = %a.id, error = %e, "cannot write the final metadata");
        }
    }

    fn save_meta_of(&mut self, key: u64) -> std::io::Result<()> {
        let Some(mut a) = self.active.remove(&key) else {
            return Ok(());
        };
        let r = self.save_meta(&mut a);
        self.active.insert(key, a);
        r
    }

    /// Writes `recording.json` (to a temporary file renamed over it; when that fails, e.g. on
    /// a full disk, in place) and updates the catalog the REST API reads.
    fn save_meta(&self, a: &mut Active) -> std::io::Result<()> {
        self.catalog.put(a.meta.clone());
        let text = serde_json::to_vec_pretty(&a.meta).unwrap_or_default();
        let path = a.dir.join("recording.json");
        let tmp = a.dir.join("recording.json.tmp");
        let atomic = std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &path));
        if atomic.is_ok() {
            return Ok(());
        }
        let _ = std::fs::remove_file(&tmp);
        std::fs::write(&path, &text)
    }
}

fn set_track(meta: &mut Value, track: u32, field: &str, v: Value) {
    if let Some(t) = meta["tracks"]
        .as_array_mut()
        .and_then(|l| l.get_mut(track as usize))
    {
        t[field] = v;
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}
