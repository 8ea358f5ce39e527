//! VP8 (libvpx via daily-video) against H.264 constrained baseline (OpenH264) on the same
//! frames: encode and decode time per frame and luma PSNR after decoding, at real-time CBR
//! settings. Prints one Markdown table row per configuration.
//!
//! Usage: codec-candidates [frames] (default 300 = 10 s at 30 fps). Each configuration encodes
//! the same `frames` pictures of daily_video::testpattern, generated before timing.

use daily_video::{
    EncodedFrame, EncoderConfig, I420Buffer, VideoDecoder, VideoEncoder, testpattern,
};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig as H264Config, FrameRate, IntraFramePeriod,
    RateControlMode, UsageType,
};
use openh264::formats::{YUVSlices, YUVSource};
use openh264::{OpenH264API, decoder::Decoder};
use std::time::Instant;

/// CPU time used by the whole process so far (every thread, including libvpx's and
/// OpenH264's workers), in ms.
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

struct Result {
    enc_cpu_ms: f64,
    enc_ms: f64,
    enc_p95_ms: f64,
    dec_ms: f64,
    psnr: f64,
    psnr_min: f64,
    kbps: f64,
    keyframes: usize,
}

fn stats(
    enc_cpu: f64,
    enc: &mut [f64],
    dec: &[f64],
    psnr: &[f64],
    bytes: usize,
    keyframes: usize,
    frames: usize,
) -> Result {
    let enc_cpu_ms = enc_cpu / enc.len() as f64;
    let enc_ms = enc.iter().sum::<f64>() / enc.len() as f64;
    enc.sort_by(f64::total_cmp);
    let enc_p95_ms = enc[enc.len() * 95 / 100];
    Result {
        enc_cpu_ms,
        enc_ms,
        enc_p95_ms,
        dec_ms: dec.iter().sum::<f64>() / dec.len() as f64,
        psnr: psnr.iter().sum::<f64>() / psnr.len() as f64,
        psnr_min: psnr.iter().copied().fold(f64::INFINITY, f64::min),
        kbps: bytes as f64 * 8.0 / (frames as f64 / 30.0) / 1000.0,
        keyframes,
    }
}

fn vp8(frames: &[I420Buffer], bitrate: u32, threads: u32, cpu_used: i32) -> Result {
    let (w, h) = (frames[0].width(), frames[0].height());
    let mut enc = VideoEncoder::new(EncoderConfig {
        width: w,
        height: h,
        fps: 30,
        bitrate_bps: bitrate,
        threads,
    })
    .unwrap();
    enc.set_cpu_used(cpu_used).unwrap();
    let mut dec = VideoDecoder::new().unwrap();
    let mut out = EncodedFrame::default();
    let mut pic = I420Buffer::default();
    let (mut et, mut dt, mut ps) = (vec![], vec![], vec![]);
    let (mut bytes, mut kf, mut ecpu) = (0, 0, 0.0);
    for (n, f) in frames.iter().enumerate() {
        let (t, c) = (Instant::now(), cpu_ms());
        let produced = enc.encode(f, n as u32 * 3000, n == 0, &mut out).unwrap();
        et.push(t.elapsed().as_secs_f64() * 1e3);
        ecpu += cpu_ms() - c;
        if !produced {
            continue;
        }
        bytes += out.data.len();
        kf += usize::from(out.keyframe);
        let c = cpu_ms();
        assert!(dec.decode(&out.data, &mut pic).unwrap());
        dt.push(cpu_ms() - c);
        ps.push(testpattern::psnr_y(f, &pic));
    }
    stats(ecpu, &mut et, &dt, &ps, bytes, kf, frames.len())
}

fn h264(frames: &[I420Buffer], bitrate: u32, threads: u16, complexity: Complexity) -> Result {
    let (w, h) = (frames[0].width() as usize, frames[0].height() as usize);
    let cfg = H264Config::new()
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(bitrate))
        .max_frame_rate(FrameRate::from_hz(30.0))
        .skip_frames(false)
        .complexity(complexity)
        // Keyframes on request only, as for VP8 (its defaults add IDRs on scene changes,
        // which this moving pattern triggers every ~17 frames).
        .scene_change_detect(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(3000))
        .num_threads(threads);
    let mut enc = Encoder::with_api_config(OpenH264API::from_source(), cfg).unwrap();
    let mut dec = Decoder::new().unwrap();
    let (mut et, mut dt, mut ps) = (vec![], vec![], vec![]);
    let (mut bytes, mut kf, mut ecpu) = (0, 0, 0.0);
    let mut data = Vec::new();
    let mut pic = I420Buffer::new(w as u32, h as u32);
    for (n, f) in frames.iter().enumerate() {
        let src = YUVSlices::new((f.y(), f.u(), f.v()), (w, h), (w, w / 2, w / 2));
        let (t, c) = (Instant::now(), cpu_ms());
        let bs = enc
            .encode_at(&src, openh264::Timestamp::from_millis(n as u64 * 1000 / 30))
            .unwrap();
        data.clear();
        bs.write_vec(&mut data);
        let key = matches!(
            bs.frame_type(),
            openh264::encoder::FrameType::IDR | openh264::encoder::FrameType::I
        );
        et.push(t.elapsed().as_secs_f64() * 1e3);
        ecpu += cpu_ms() - c;
        if data.is_empty() {
            continue;
        }
        bytes += data.len();
        kf += usize::from(key);
        let c = cpu_ms();
        let yuv = dec.decode(&data).unwrap().expect("a picture per frame");
        let (ys, us, _) = yuv.strides();
        for r in 0..h {
            pic.y_mut()[r * w..(r + 1) * w].copy_from_slice(&yuv.y()[r * ys..r * ys + w]);
        }
        for r in 0..h / 2 {
            pic.u_mut()[r * w / 2..(r + 1) * w / 2]
                .copy_from_slice(&yuv.u()[r * us..r * us + w / 2]);
            pic.v_mut()[r * w / 2..(r + 1) * w / 2]
                .copy_from_slice(&yuv.v()[r * us..r * us + w / 2]);
        }
        dt.push(cpu_ms() - c);
        ps.push(testpattern::psnr_y(f, &pic));
    }
    stats(ecpu, &mut et, &dt, &ps, bytes, kf, frames.len())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(300);
    println!(
        "| codec | size | kbit/s target | threads | setting | encode CPU ms/frame | encode wall ms mean | encode wall p95 | decode CPU ms/frame | luma PSNR mean (min) dB | kbit/s actual | keyframes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    eprintln!("loadavg at start: {}", loadavg());
    for (w, h, bitrate) in [(640u32, 360u32, 680_000u32), (1280, 720, 2_000_000)] {
        let frames: Vec<I420Buffer> = (0..count as u32)
            .map(|n| {
                let mut b = I420Buffer::default();
                testpattern::i420(n, w, h, &mut b).unwrap();
                b
            })
            .collect();
        let row = |codec: &str, threads: u32, setting: &str, r: Result| {
            println!(
                "| {codec} | {w}x{h} | {} | {threads} | {setting} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} ({:.2}) | {:.0} | {} |",
                bitrate / 1000,
                r.enc_cpu_ms,
                r.enc_ms,
                r.enc_p95_ms,
                r.dec_ms,
                r.psnr,
                r.psnr_min,
                r.kbps,
                r.keyframes
            );
        };
        for threads in [1u32, 2] {
            for cpu in [-4, -6, -8, -12] {
                row(
                    "VP8 libvpx",
                    threads,
                    &format!("cpu-used {cpu}"),
                    vp8(&frames, bitrate, threads, cpu),
                );
            }
            for (name, c) in [
                ("Low", Complexity::Low),
                ("Medium", Complexity::Medium),
                ("High", Complexity::High),
            ] {
                row(
                    "H.264 OpenH264",
                    threads,
                    &format!("complexity {name}"),
                    h264(&frames, bitrate, threads as u16, c),
                );
            }
        }
    }
    eprintln!("loadavg at end: {}", loadavg());
}
