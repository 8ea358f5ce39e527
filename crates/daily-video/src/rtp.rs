//! The VP8 RTP payload format (RFC 7741): packetizer and frame assembler.
//!
//! Only payloads are handled here; the RTP header (sequence number, timestamp, marker) is the
//! caller's, who passes its fields in. Every packet we send carries the 4-byte payload
//! descriptor `X=1, I=1, M=1`: a 15-bit PictureID that increments per frame, which Chromium's
//! receiver uses to see a missing frame even when no sequence number reveals it. The receiver
//! accepts any descriptor RFC 7741 allows (with or without PictureID, TL0PICIDX, TID/KEYIDX).

/// Bytes of the payload descriptor this packetizer writes (RFC 7741 section 4.2): the first
/// octet, the extension octet and a 2-byte PictureID.
pub const DESCRIPTOR_LEN: usize = 4;

/// Packets the assembler keeps at most. This bounds its memory (about 600 KB at 1200-byte
/// payloads) and the largest frame it can put together (512 packets: more than a 1080p
/// keyframe at 4 Mbit/s with the encoder's keyframe size limit), and is how far (in sequence
/// numbers) a packet may arrive ahead of the oldest missing one before that one is given up.
pub const REORDER_WINDOW: usize = 512;

/// Splits encoded VP8 frames into RTP payloads.
#[derive(Debug, Clone)]
pub struct Packetizer {
    picture_id: u16,
    buf: Vec<u8>,
}

impl Default for Packetizer {
    fn default() -> Self {
        Packetizer::new()
    }
}

impl Packetizer {
    /// A packetizer whose first PictureID is 0.
    pub fn new() -> Packetizer {
        Packetizer::with_picture_id(0)
    }

    /// A packetizer starting at `picture_id` (mod 2^15); a restarted sender should not
    /// reuse the IDs it just sent, so the client may start at a random one.
    pub fn with_picture_id(picture_id: u16) -> Packetizer {
        Packetizer {
            picture_id: picture_id & 0x7FFF,
            buf: Vec::with_capacity(1500),
        }
    }

    /// The PictureID the next frame will carry.
    pub fn next_picture_id(&self) -> u16 {
        self.picture_id
    }

    /// Calls `out(payload, marker)` for each RTP payload of `frame`, in order; `marker` is set
    /// on the last one (the RTP marker bit). Payloads are at most `max_payload` bytes
    /// (including the descriptor) and of near-equal size, so no tiny last packet is sent.
    /// `keyframe` is not needed by VP8's descriptor (the frame's own header says it); it is
    /// there so that the signature fits payload formats that need it. An empty frame sends
    /// nothing.
    ///
    /// # Panics
    /// If `max_payload` leaves no room for data (`<= DESCRIPTOR_LEN`).
    pub fn packetize(
        &mut self,
        frame: &[u8],
        keyframe: bool,
        max_payload: usize,
        mut out: impl FnMut(&[u8], bool),
    ) {
        assert!(
            max_payload > DESCRIPTOR_LEN,
            "max_payload {max_payload} leaves no room for data"
        );
        if frame.is_empty() {
            return;
        }
        debug_assert_eq!(
            keyframe,
            frame[0] & 1 == 0,
            "keyframe flag disagrees with the VP8 header"
        );
        let room = max_payload - DESCRIPTOR_LEN;
        let packets = frame.len().div_ceil(room);
        let (base, extra) = (frame.len() / packets, frame.len() % packets);
        let mut offset = 0;
        for i in 0..packets {
            let len = base + usize::from(i < extra);
            self.buf.clear();
            // X=1 (extensions present), S=1 on the first packet of the frame (partition 0).
            self.buf.push(if i == 0 { 0x90 } else { 0x80 });
            // I=1: a PictureID follows; M=1: in its 15-bit form.
            self.buf.push(0x80);
            self.buf
                .extend_from_slice(&(0x8000 | self.picture_id).to_be_bytes());
            self.buf.extend_from_slice(&frame[offset..offset + len]);
            offset += len;
            out(&self.buf, i + 1 == packets);
        }
        self.picture_id = (self.picture_id + 1) & 0x7FFF;
    }
}

/// One complete frame out of [`FrameAssembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    /// The VP8 frame, as [`crate::VideoDecoder::decode`] takes it.
    pub data: Vec<u8>,
    /// Whether it is a keyframe (its VP8 header says so and carries the start code).
    pub keyframe: bool,
    /// The RTP timestamp of its packets (90 kHz).
    pub rtp_timestamp: u32,
}

/// What the descriptor of one packet says (RFC 7741 section 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    /// Bytes before the VP8 payload.
    len: usize,
    /// S=1 and PID=0: the first packet of a frame.
    frame_start: bool,
}

fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let mut len = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(1)?;
        len = 2;
        if ext & 0x80 != 0 {
            // PictureID: 7 or 15 bits (M bit).
            let pid = *payload.get(len)?;
            len += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            len += 1; // TID/Y/KEYIDX
        }
    }
    if payload.len() <= len {
        return None; // no VP8 data
    }
    Some(Descriptor {
        len,
        frame_start: first & 0x10 != 0 && first & 0x07 == 0,
    })
}

/// Whether a frame's first VP8 bytes are a keyframe: the P bit of the frame tag is 0 and the
/// keyframe start code 9d 01 2a follows (RFC 6386 section 9.1).
fn is_keyframe(vp8: &[u8]) -> bool {
    vp8.len() >= 10 && vp8[0] & 1 == 0 && vp8[3..6] == [0x9d, 0x01, 0x2a]
}

/// How a buffered frame ends (see `FrameAssembler::frame_end`).
enum End {
    /// All its packets are here, up to the marker at this sequence number.
    Complete(u64),
    /// A packet of another frame comes at this sequence number before the marker: the frame's
    /// end was lost.
    Broken(u64),
    /// This sequence number is still missing.
    Missing(u64),
}

#[derive(Debug, Clone, Default)]
struct Slot {
    used: bool,
    seq: u64,
    timestamp: u32,
    marker: bool,
    frame_start: bool,
    /// The VP8 bytes (descriptor removed); the buffer is reused by later packets.
    data: Vec<u8>,
}

/// Puts VP8 frames back together from RTP packets.
///
/// - Packets may arrive out of order within [`REORDER_WINDOW`] sequence numbers; duplicates
///   and packets older than what was already output are ignored.
/// - Frames come out whole and in order. A frame with a missing packet is dropped once the
///   packet is given up for lost: when the window has moved past it, or when two later frames
///   are complete (so reordering by up to a frame's worth of packets is absorbed, at the cost
///   of one frame of delay only while a packet is missing) and, with
///   [`FrameAssembler::with_repair_wait`], those later frames span the wait in RTP time (so a
///   retransmission asked for with a NACK has time to arrive).
/// - After a loss, delta frames are dropped (they would reference a picture the decoder does
///   not have) until a keyframe arrives; [`FrameAssembler::needs_keyframe`] is true meanwhile,
///   which is the caller's cue to send a PLI (RFC 4585 section 6.3.1). It is also true before
///   the first keyframe.
/// - A packet more than [`REORDER_WINDOW`] sequence numbers behind the newest is taken as a
///   sender that restarted its numbering: everything buffered is dropped and the assembler
///   waits for a keyframe on the new numbers. (A jump forward by more than the window is a
///   loss of everything between, with the same effect.)
/// - Memory is bounded: [`REORDER_WINDOW`] slots, whose buffers are reused.
///
/// [`FrameAssembler::push`] returns at most one frame; when one packet completes several (a
/// late packet that unblocks frames behind it), the others come from [`FrameAssembler::poll`].
#[derive(Debug, Clone)]
pub struct FrameAssembler {
    slots: Vec<Slot>,
    /// The sequence number (extended to 64 bits) where the next frame should start.
    next: u64,
    /// Whether `next` is known to be a frame's first packet (false at the start and after a
    /// loss, until a packet with the start flag is seen).
    synced: bool,
    /// Highest extended sequence number seen; `None` before the first packet.
    highest: Option<u64>,
    /// Whether a frame start has been found yet. Until then a packet older than the first
    /// one is still taken (the first packets of a stream may arrive out of order too).
    started: bool,
    needs_keyframe: bool,
    frames_dropped: u64,
    /// RTP clock ticks of complete frames after a gap before its packet is given up.
    repair_wait: u32,
}

impl Default for FrameAssembler {
    fn default() -> Self {
        FrameAssembler::new()
    }
}

impl FrameAssembler {
    /// An empty assembler; it waits for a keyframe.
    pub fn new() -> FrameAssembler {
        FrameAssembler {
            slots: vec![Slot::default(); REORDER_WINDOW],
            next: 0,
            synced: false,
            highest: None,
            started: false,
            needs_keyframe: true,
            frames_dropped: 0,
            repair_wait: 0,
        }
    }

    /// An assembler that waits for a missing packet until the complete frames after it span
    /// `ticks` of the RTP clock (as well as being two or more): time for a retransmission
    /// (RFC 4585 NACK, RFC 4588 RTX) to fill the gap. Two frames (66 ms at 30 frames/s) are
    /// shorter than a NACK generator's period plus a round trip, so without a wait nearly every
    /// repair came too late and each lost packet cost a keyframe. Measured in RTP time, not
    /// frames, so the wait is the same at any frame rate; frames behind a gap are held for at
    /// most that long.
    pub fn with_repair_wait(ticks: u32) -> FrameAssembler {
        FrameAssembler { repair_wait: ticks, ..FrameAssembler::new() }
    }

    /// True from a loss (or the start) until a keyframe has been output: the caller should
    /// ask the sender for one (PLI), and again from time to time while it stays true.
    pub fn needs_keyframe(&self) -> bool {
        self.needs_keyframe
    }

    /// Frames dropped so far: incomplete ones, and complete delta frames refused while
    /// waiting for a keyframe.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped
    }

    /// Takes one RTP packet's sequence number, timestamp, marker bit and payload; returns the
    /// next frame if this packet made one complete. Malformed payloads are ignored.
    pub fn push(
        &mut self,
        seq: u16,
        rtp_ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<AssembledFrame> {
        let desc = parse_descriptor(payload)?;
        let ext = match self.highest {
            // Start high so that a packet a little older than the first still extends.
            None => {
                self.next = (1 << 32) + u64::from(seq);
                (1 << 32) + u64::from(seq)
            }
            Some(h) => h.wrapping_add_signed(i64::from(seq.wrapping_sub(h as u16) as i16)),
        };
        if ext < self.next {
            let highest = self.highest.unwrap_or(ext);
            if highest - ext >= REORDER_WINDOW as u64 {
                // Far behind everything seen: not a late packet but a sender that restarted
                // its sequence numbers lower (a late packet this old would be useless anyway).
                self.restart(ext);
            } else if self.started {
                return self.poll(); // late or duplicate of something already output or dropped
            } else {
                self.next = ext;
            }
        }
        let window = REORDER_WINDOW as u64;
        if ext >= self.next + window {
            // Too far ahead: everything older than the new window is given up.
            self.lose_until(ext + 1 - window);
        }
        let slot = &mut self.slots[(ext % window) as usize];
        if slot.used {
            return self.poll(); // duplicate (slots hold only sequence numbers in the window)
        }
        slot.used = true;
        slot.seq = ext;
        slot.timestamp = rtp_ts;
        slot.marker = marker;
        slot.frame_start = desc.frame_start;
        slot.data.clear();
        slot.data.extend_from_slice(&payload[desc.len..]);
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.poll()
    }

    /// Forgets everything buffered and starts over at `seq`, waiting for a keyframe.
    fn restart(&mut self, seq: u64) {
        for s in &mut self.slots {
            s.used = false;
        }
        self.next = seq;
        self.highest = Some(seq);
        self.synced = false;
        self.started = false;
        self.needs_keyframe = true;
    }

    fn slot(&self, seq: u64) -> Option<&Slot> {
        let s = &self.slots[(seq % REORDER_WINDOW as u64) as usize];
        (s.used && s.seq == seq).then_some(s)
    }

    fn free(&mut self, from: u64, to: u64) {
        for seq in from..to {
            let s = &mut self.slots[(seq % REORDER_WINDOW as u64) as usize];
            if s.seq == seq {
                s.used = false;
            }
        }
    }

    /// Gives up every packet before `seq`: a loss.
    fn lose_until(&mut self, seq: u64) {
        if seq <= self.next {
            return;
        }
        self.free(self.next, seq);
        self.next = seq;
        self.synced = false;
        self.needs_keyframe = true;
        self.frames_dropped += 1;
    }

    /// Where the frame starting at `start` (present) ends. Linear in the packets looked at.
    fn frame_end(&self, start: u64) -> End {
        let ts = self.slot(start).map_or(0, |s| s.timestamp);
        let end = self.highest.unwrap_or(start);
        for seq in start..=end {
            let Some(s) = self.slot(seq) else {
                return End::Missing(seq);
            };
            if seq != start && (s.frame_start || s.timestamp != ts) {
                return End::Broken(seq);
            }
            if s.marker {
                return End::Complete(seq);
            }
        }
        End::Missing(end + 1)
    }

    /// Complete frames buffered after `from` and the RTP time between the first and the last
    /// of them (used to decide that a missing packet is lost). Linear in the window: every
    /// scan resumes where the previous one stopped.
    fn complete_frames_after(&self, from: u64) -> (usize, u32) {
        let end = self.highest.unwrap_or(from);
        let mut count = 0;
        let mut first_ts = None;
        let mut last_ts = 0;
        let mut seq = from + 1;
        while seq <= end {
            match self.slot(seq) {
                Some(s) if s.frame_start => match self.frame_end(seq) {
                    End::Complete(last) => {
                        count += 1;
                        first_ts.get_or_insert(s.timestamp);
                        last_ts = s.timestamp;
                        seq = last + 1;
                    }
                    End::Broken(at) => seq = at,
                    End::Missing(at) => seq = at + 1,
                },
                _ => seq += 1,
            }
        }
        (count, first_ts.map_or(0, |f| last_ts.wrapping_sub(f)))
    }

    /// Returns the next frame that is ready, if any (see the type's documentation).
    pub fn poll(&mut self) -> Option<AssembledFrame> {
        let highest = self.highest?;
        while self.next <= highest {
            if !self.synced {
                // Skip to the first frame start we have; packets before it belong to a frame
                // whose start is lost.
                let start =
                    (self.next..=highest).find(|&s| self.slot(s).is_some_and(|s| s.frame_start))?;
                self.free(self.next, start);
                self.next = start;
                self.synced = true;
                self.started = true;
            }
            match self.frame_end(self.next) {
                End::Complete(last) => {
                    let start = self.next;
                    let frame = self.take_frame(start, last);
                    self.next = last + 1;
                    if let Some(f) = frame {
                        return Some(f);
                    }
                }
                End::Broken(at) => self.lose_until(at),
                End::Missing(gap) => {
                    let (complete, span) = self.complete_frames_after(gap);
                    if complete >= 2 && span >= self.repair_wait {
                        self.lose_until(gap + 1);
                    } else {
                        return None;
                    }
                }
            }
        }
        None
    }

    /// Joins the packets `start..=last` of a complete frame and frees them; `None` (counted as
    /// dropped) for a delta frame while a keyframe is needed.
    fn take_frame(&mut self, start: u64, last: u64) -> Option<AssembledFrame> {
        let first = self.slot(start).expect("complete frame");
        let keyframe = is_keyframe(&first.data);
        let rtp_timestamp = first.timestamp;
        let frame = if keyframe || !self.needs_keyframe {
            let mut data = Vec::with_capacity((last - start + 1) as usize * first.data.len());
            for seq in start..=last {
                data.extend_from_slice(&self.slot(seq).expect("complete frame").data);
            }
            if keyframe {
                self.needs_keyframe = false;
            }
            Some(AssembledFrame {
                data,
                keyframe,
                rtp_timestamp,
            })
        } else {
            self.frames_dropped += 1;
            None
        };
        self.free(start, last + 1);
        frame
    }
}
