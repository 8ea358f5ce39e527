use super::{Rng, encode_pattern};
use crate::rtp::{AssembledFrame, FrameAssembler, Packetizer};
use crate::*;

struct Packet {
    seq: u16,
    ts: u32,
    marker: bool,
    payload: Vec<u8>,
    /// The frame it belongs to.
    frame: usize,
}

/// Packetizes `frames` with sequence numbers from `first_seq`.
fn packets(frames: &[EncodedFrame], max_payload: usize, first_seq: u16) -> Vec<Packet> {
    let mut p = Packetizer::new();
    let mut out = Vec::new();
    let mut seq = first_seq;
    for (n, f) in frames.iter().enumerate() {
        p.packetize(&f.data, f.keyframe, max_payload, |payload, marker| {
            assert!(payload.len() <= max_payload);
            out.push(Packet {
                seq,
                ts: n as u32 * 3000,
                marker,
                payload: payload.to_vec(),
                frame: n,
            });
            seq = seq.wrapping_add(1);
        });
    }
    out
}

/// Pushes `packets` in order, draining `poll` too.
fn assemble<'a>(
    a: &mut FrameAssembler,
    packets: impl IntoIterator<Item = &'a Packet>,
) -> Vec<AssembledFrame> {
    let mut out = Vec::new();
    for p in packets {
        if let Some(f) = a.push(p.seq, p.ts, p.marker, &p.payload) {
            out.push(f);
            while let Some(f) = a.poll() {
                out.push(f);
            }
        }
    }
    out
}

fn encoded(count: u32, keyframes: &[u32]) -> Vec<EncodedFrame> {
    encode_pattern(320, 180, 400_000, count, keyframes)
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

fn check_in_order(out: &[AssembledFrame], frames: &[EncodedFrame], which: &[usize]) {
    let got: Vec<u32> = out.iter().map(|f| f.rtp_timestamp / 3000).collect();
    let want: Vec<u32> = which.iter().map(|&n| n as u32).collect();
    assert_eq!(got, want);
    for (f, &n) in out.iter().zip(which) {
        assert_eq!(f.data, frames[n].data, "frame {n}");
        assert_eq!(f.keyframe, frames[n].keyframe, "frame {n}");
    }
}

#[test]
fn round_trip_in_order_decodes() {
    let frames = encoded(20, &[]);
    let pk = packets(&frames, 300, 1000);
    assert!(
        pk.len() > 3 * frames.len(),
        "want several packets per frame, got {}",
        pk.len()
    );
    let mut a = FrameAssembler::new();
    assert!(a.needs_keyframe(), "nothing decodable yet");
    let out = assemble(&mut a, &pk);
    check_in_order(&out, &frames, &(0..20).collect::<Vec<_>>());
    assert!(!a.needs_keyframe());
    assert_eq!(a.frames_dropped(), 0);
    let mut dec = VideoDecoder::new().unwrap();
    let mut pic = I420Buffer::default();
    for (n, f) in out.iter().enumerate() {
        assert!(dec.decode(&f.data, &mut pic).unwrap());
        assert_eq!(testpattern::read_frame_number_i420(&pic), Some(n as u32));
    }
}

#[test]
fn descriptor_and_picture_id() {
    let frames = encoded(2, &[]);
    let mut p = Packetizer::with_picture_id(0x7FFF);
    let mut seen = Vec::new();
    for f in &frames {
        p.packetize(&f.data, f.keyframe, 200, |payload, marker| {
            seen.push((payload.to_vec(), marker))
        });
    }
    assert_eq!(p.next_picture_id(), 1, "15-bit PictureID wraps");
    let first = &seen[0].0;
    assert_eq!(first[0], 0x90, "X and S on the first packet");
    assert_eq!(first[1], 0x80, "I");
    assert_eq!(
        u16::from_be_bytes([first[2], first[3]]),
        0xFFFF,
        "M=1 and PictureID 0x7FFF"
    );
    assert_eq!(seen[1].0[0], 0x80, "no S on later packets");
    let last_of_first = seen.iter().position(|(_, m)| *m).unwrap();
    assert_eq!(
        u16::from_be_bytes([seen[last_of_first + 1].0[2], seen[last_of_first + 1].0[3]]),
        0x8000
    );
    // Near-equal sizes: no runt packet.
    let sizes: Vec<usize> = seen[..=last_of_first]
        .iter()
        .map(|(p, _)| p.len())
        .collect();
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    assert!(sizes.iter().all(|&s| s <= 200));
}

#[test]
fn other_descriptors_are_accepted() {
    // A one-packet keyframe from another sender: 7-bit PictureID, TL0PICIDX and TID/KEYIDX.
    let frames = encoded(1, &[]);
    let mut payload = vec![0x90, 0xF0, 0x05, 0x11, 0x20];
    payload.extend_from_slice(&frames[0].data);
    let mut a = FrameAssembler::new();
    let f = a.push(7, 1234, true, &payload).expect("complete");
    assert_eq!(f.data, frames[0].data);
    assert!(f.keyframe);
    assert_eq!(f.rtp_timestamp, 1234);
    // No extension at all (X=0).
    let mut payload = vec![0x10];
    payload.extend_from_slice(&frames[0].data);
    assert_eq!(
        a.push(8, 4567, true, &payload).expect("complete").data,
        frames[0].data
    );
}

#[test]
fn reordering_and_duplicates() {
    let frames = encoded(30, &[]);
    let pk = packets(&frames, 300, 500);
    let mut order: Vec<&Packet> = pk.iter().collect();
    // Swap neighbours everywhere (inside frames and across frame boundaries), and send a few
    // packets three places late.
    for i in (0..order.len() - 1).step_by(2) {
        order.swap(i, i + 1);
    }
    for i in (5..order.len() - 3).step_by(17) {
        let p = order.remove(i);
        order.insert(i + 3, p);
    }
    // Every packet twice, the copy a little later.
    let mut with_dups = Vec::new();
    for (i, p) in order.iter().enumerate() {
        with_dups.push(*p);
        if i >= 2 {
            with_dups.push(order[i - 2]);
        }
    }
    let mut a = FrameAssembler::new();
    let out = assemble(&mut a, with_dups);
    check_in_order(&out, &frames, &(0..30).collect::<Vec<_>>());
    assert_eq!(a.frames_dropped(), 0);
    assert!(!a.needs_keyframe());
}

#[test]
fn loss_drops_until_keyframe() {
    let frames = encoded(20, &[12]);
    let pk = packets(&frames, 300, 0);
    // Lose the second packet of frame 5.
    let lost = pk.iter().position(|p| p.frame == 5).unwrap() + 1;
    let mut a = FrameAssembler::new();
    let mut out = Vec::new();
    let mut needs_at = Vec::new();
    for (i, p) in pk.iter().enumerate() {
        if i == lost {
            continue;
        }
        out.extend(assemble(&mut a, [p]));
        needs_at.push((p.frame, a.needs_keyframe()));
    }
    // Frames 0-4 out, 5 incomplete, 6-11 are deltas that depend on it, 12 is the keyframe.
    let mut want: Vec<usize> = (0..5).collect();
    want.extend(12..20);
    check_in_order(&out, &frames, &want);
    assert!(!a.needs_keyframe());
    // The loss was noticed within two frames and reported until the keyframe.
    assert!(needs_at.iter().any(|&(f, n)| f <= 7 && n));
    assert!(
        needs_at
            .iter()
            .filter(|&&(f, _)| (8..12).contains(&f))
            .all(|&(_, n)| n)
    );
    assert!(a.frames_dropped() >= 7, "{}", a.frames_dropped());
    // The decoder takes what came out.
    let mut dec = VideoDecoder::new().unwrap();
    let mut pic = I420Buffer::default();
    for f in &out {
        assert!(dec.decode(&f.data, &mut pic).unwrap());
    }
    assert_eq!(testpattern::read_frame_number_i420(&pic), Some(19));
}

#[test]
fn a_repair_within_the_wait_completes_the_frame() {
    let frames = encoded(20, &[12]);
    let pk = packets(&frames, 300, 0);
    // The second packet of frame 5 arrives late, after frames 6-10 (five frames, 150 ms at 30
    // frames/s): a NACK's retransmission.
    let late = pk.iter().position(|p| p.frame == 5).unwrap() + 1;
    let after = pk.iter().position(|p| p.frame == 11).unwrap();
    let mut order: Vec<&Packet> = pk.iter().enumerate().filter(|(i, _)| *i != late).map(|(_, p)| p).collect();
    order.insert(after - 1, &pk[late]);
    // Two frames' patience gives it up (the frames up to the keyframe are lost) ...
    let mut a = FrameAssembler::new();
    let out = assemble(&mut a, order.iter().copied());
    assert!(out.len() < 20 && a.frames_dropped() > 0);
    // ... 200 ms of RTP time waits for it, and every frame comes out in order.
    let mut a = FrameAssembler::with_repair_wait(200 * 90);
    let out = assemble(&mut a, order.iter().copied());
    check_in_order(&out, &frames, &(0..20).collect::<Vec<_>>());
    assert_eq!(a.frames_dropped(), 0);
    // A packet that never comes is given up once the later frames span the wait.
    let mut a = FrameAssembler::with_repair_wait(200 * 90);
    let out = assemble(&mut a, pk.iter().enumerate().filter(|(i, _)| *i != late).map(|(_, p)| p));
    let mut want: Vec<usize> = (0..5).collect();
    want.extend(12..20);
    check_in_order(&out, &frames, &want);
}

#[test]
fn lost_last_packet_and_lost_whole_frame() {
    let frames = encoded(12, &[6, 10]);
    let pk = packets(&frames, 300, 0);
    // The marker packet of frame 2 and all of frame 8 are lost.
    let marker2 = pk.iter().position(|p| p.frame == 2 && p.marker).unwrap();
    let mut a = FrameAssembler::new();
    let out = assemble(
        &mut a,
        pk.iter()
            .enumerate()
            .filter(|(i, p)| *i != marker2 && p.frame != 8)
            .map(|(_, p)| p),
    );
    check_in_order(&out, &frames, &[0, 1, 6, 7, 10, 11]);
}

#[test]
fn sequence_numbers_wrap() {
    let frames = encoded(10, &[]);
    let pk = packets(&frames, 250, 65_520);
    assert!(pk.iter().any(|p| p.seq == 65_535) && pk.iter().any(|p| p.seq == 0));
    let mut a = FrameAssembler::new();
    let mut order: Vec<&Packet> = pk.iter().collect();
    for i in (1..order.len() - 1).step_by(3) {
        order.swap(i, i + 1);
    }
    let out = assemble(&mut a, order);
    check_in_order(&out, &frames, &(0..10).collect::<Vec<_>>());
}

#[test]
fn a_frame_larger_than_the_window_is_given_up_not_kept() {
    let frames = encoded(3, &[]);
    // A tiny MTU makes the keyframe longer than the window.
    let pk = packets(&frames, 5, 0);
    assert!(pk.iter().filter(|p| p.frame == 0).count() > rtp::REORDER_WINDOW);
    let mut a = FrameAssembler::new();
    let out = assemble(&mut a, &pk);
    assert!(out.is_empty());
    assert!(a.needs_keyframe());
}

#[test]
fn garbage_never_panics() {
    let frames = encoded(4, &[]);
    let pk = packets(&frames, 300, 0);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut a = FrameAssembler::new();
    let mut dec = VideoDecoder::new().unwrap();
    let mut pic = I420Buffer::default();
    for round in 0..20_000 {
        let len = rng.below(40) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 3 == 0 && !payload.is_empty() {
            // Mostly valid descriptors, garbage VP8.
            payload[0] = [0x90, 0x80, 0x10, 0x00][rng.below(4) as usize];
        }
        if round % 7 == 0 {
            // Real packets mixed in, at random positions.
            let p = &pk[rng.below(pk.len() as u64) as usize];
            payload = p.payload.clone();
        }
        let seq = if round % 2 == 0 {
            rng.next() as u16
        } else {
            round as u16
        };
        if let Some(f) = a.push(seq, rng.next() as u32, rng.below(2) == 0, &payload) {
            let _ = dec.decode(&f.data, &mut pic);
        }
        while let Some(f) = a.poll() {
            let _ = dec.decode(&f.data, &mut pic);
        }
    }
    // Still works afterwards: a clean stream after a jump in sequence numbers.
    let mut out = Vec::new();
    for p in &pk {
        if let Some(f) = a.push(p.seq.wrapping_add(30_000), p.ts, p.marker, &p.payload) {
            out.push(f);
        }
    }
    assert!(
        out.iter().any(|f| f.keyframe),
        "recovers on the next keyframe"
    );
}

#[test]
fn a_restarted_sender_is_followed() {
    let frames = encoded(6, &[3]);
    let mut a = FrameAssembler::new();
    let first = packets(&frames[..3], 300, 40_000);
    let out = assemble(&mut a, &first);
    assert_eq!(out.len(), 3);
    // The sender restarts 5000 sequence numbers lower, with the keyframe (frame 3) first.
    let mut p = Packetizer::new();
    let mut second = Vec::new();
    let mut seq = 35_000u16;
    for (n, f) in frames.iter().enumerate().skip(3) {
        p.packetize(&f.data, f.keyframe, 300, |payload, marker| {
            second.push(Packet {
                seq,
                ts: n as u32 * 3000,
                marker,
                payload: payload.to_vec(),
                frame: n,
            });
            seq = seq.wrapping_add(1);
        });
    }
    let out = assemble(&mut a, &second);
    check_in_order(&out, &frames, &[3, 4, 5]);
    assert!(!a.needs_keyframe());
}
