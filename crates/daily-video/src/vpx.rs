//! VP8 through libvpx: the crate's only FFI and only `unsafe` code.
//!
//! Settings follow what libwebrtc's `LibvpxVp8Encoder` uses for camera video, because that is
//! what browsers' decoders and Daily's SFU are used to: one-pass CBR with the real-time
//! deadline, no look-ahead (`lag_in_frames` 0: a frame in is a frame out, no added latency),
//! error-resilient mode (entropy contexts reset every frame, so a lost frame does not corrupt
//! the decoding of the following ones beyond the reference loss itself), quantizer 2..56,
//! undershoot 100 % / overshoot 15 %, a 1000 ms rate buffer, and keyframes only on request
//! (PLI/FIR, a new subscriber) or every 3000 frames. Frame dropping by the rate control is off:
//! the caller paces frames and lowers the bitrate on congestion.

use crate::{I420Buffer, VideoError};
use std::ffi::{CStr, c_int, c_uint, c_ulong};
use std::mem::MaybeUninit;
use std::ptr;
use vpx_sys::*;

/// What a new [`VideoEncoder`] is set up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Width in pixels (1..=16383; odd sizes are fine).
    pub width: u32,
    /// Height in pixels (1..=16383).
    pub height: u32,
    /// Frames per second the caller intends to send; the rate control spreads the bitrate over
    /// them. 1..=120.
    pub fps: u32,
    /// Target bitrate in bit/s (at least 10 kbit/s). Daily's camera default is 680 kbit/s at
    /// 640x360.
    pub bitrate_bps: u32,
    /// Encoder threads (1 = encode on the calling thread only). libvpx splits a frame into
    /// macroblock rows whose threads wait for each other by spinning (no yield on Unix): on an idle machine 2
    /// threads cut the time per 720p frame by about a quarter, but on a busy one they cost
    /// several times the CPU of 1 thread (`benches/CODEC_CHOICE.md`). Use 1 unless cores are
    /// known to be idle.
    pub threads: u32,
}

impl Default for EncoderConfig {
    /// 640x360 at 30 fps and 680 kbit/s, one thread: Daily's default camera settings.
    fn default() -> Self {
        EncoderConfig {
            width: 640,
            height: 360,
            fps: 30,
            bitrate_bps: 680_000,
            threads: 1,
        }
    }
}

/// VP8's frame size limit in each direction (14-bit fields, RFC 6386 section 9.1).
pub const MAX_DIMENSION: u32 = 16383;

/// Frames between keyframes when none is requested: 100 s at 30 fps. Receivers ask for
/// keyframes when they need them (PLI/FIR), so periodic ones would only waste bits.
pub const KEYFRAME_MAX_INTERVAL: u32 = 3000;

/// libvpx's `cpu-used` default here: libwebrtc's for VP8 on desktop (-6); see
/// `benches/CODEC_CHOICE.md` for the cost and quality of other values.
pub const DEFAULT_CPU_USED: i32 = -6;

/// One encoded VP8 frame; reused across [`VideoEncoder::encode`] calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The VP8 bitstream of one frame (RFC 6386), as the RTP packetizer takes it.
    pub data: Vec<u8>,
    /// Whether it is a keyframe (decodable on its own).
    pub keyframe: bool,
}

fn check_config(cfg: &EncoderConfig) -> Result<(), VideoError> {
    crate::color::check_dimensions(cfg.width, cfg.height)?;
    if cfg.width > MAX_DIMENSION || cfg.height > MAX_DIMENSION {
        return Err(VideoError::InvalidDimensions {
            width: cfg.width,
            height: cfg.height,
            reason: "VP8 codes at most 16383 pixels in each direction",
        });
    }
    if !(1..=120).contains(&cfg.fps) {
        return Err(VideoError::InvalidConfig {
            reason: "fps must be in 1..=120",
        });
    }
    if cfg.bitrate_bps < 10_000 {
        return Err(VideoError::InvalidConfig {
            reason: "bitrate must be at least 10 kbit/s",
        });
    }
    if !(1..=16).contains(&cfg.threads) {
        return Err(VideoError::InvalidConfig {
            reason: "threads must be in 1..=16",
        });
    }
    Ok(())
}

/// libvpx's message for the last error of `ctx`, with its detail when there is one.
fn ctx_error(function: &'static str, ctx: &mut vpx_codec_ctx_t) -> VideoError {
    // SAFETY: `ctx` is an initialised codec context; libvpx returns static or context-owned
    // NUL-terminated strings (or NULL for the detail), which are copied before returning.
    let (msg, detail) = unsafe {
        let m = vpx_codec_error(ctx);
        let d = vpx_codec_error_detail(ctx);
        (
            if m.is_null() {
                String::new()
            } else {
                CStr::from_ptr(m).to_string_lossy().into_owned()
            },
            if d.is_null() {
                None
            } else {
                Some(CStr::from_ptr(d).to_string_lossy().into_owned())
            },
        )
    };
    VideoError::Codec {
        function,
        message: match detail {
            Some(d) if !d.is_empty() => format!("{msg} ({d})"),
            _ => msg,
        },
    }
}

/// An error code without a context (initialisation failures).
fn code_error(function: &'static str, err: vpx_codec_err_t) -> VideoError {
    // SAFETY: `vpx_codec_err_to_string` returns a static NUL-terminated string for any code.
    let msg = unsafe { CStr::from_ptr(vpx_codec_err_to_string(err)) };
    VideoError::Codec {
        function,
        message: msg.to_string_lossy().into_owned(),
    }
}

/// An image header pointing into `frame`'s planes (no copy). libvpx's `vpx_img_wrap` would
/// compute chroma strides from an even-rounded width, so the planes and strides are set here.
fn wrap_image(frame: &I420Buffer) -> vpx_image_t {
    let mut img = MaybeUninit::<vpx_image_t>::zeroed();
    // SAFETY: `vpx_img_wrap` only fills in the header it is given (it neither reads nor
    // writes the pixels); the pointer it stores is replaced below by our three planes. A
    // zeroed `vpx_image_t` is a valid value (integers, null pointers, enum 0 =
    // VPX_IMG_FMT_NONE), so `assume_init` is sound even if the call failed.
    let mut img = unsafe {
        vpx_img_wrap(
            img.as_mut_ptr(),
            vpx_img_fmt::VPX_IMG_FMT_I420,
            frame.width(),
            frame.height(),
            1,
            frame.as_bytes().as_ptr() as *mut u8,
        );
        img.assume_init()
    };
    let cw = frame.chroma_width() as c_int;
    img.planes[0] = frame.y().as_ptr() as *mut u8;
    img.planes[1] = frame.u().as_ptr() as *mut u8;
    img.planes[2] = frame.v().as_ptr() as *mut u8;
    img.stride[0] = frame.width() as c_int;
    img.stride[1] = cw;
    img.stride[2] = cw;
    img
}

/// A VP8 encoder for one outgoing track. Not thread-safe by itself (`Send`, not `Sync`).
pub struct VideoEncoder {
    ctx: Box<vpx_codec_ctx_t>,
    cfg: vpx_codec_enc_cfg_t,
    config: EncoderConfig,
    cpu_used: i32,
    /// The last `pts_90khz` and its unwrapped 64-bit value handed to libvpx, which wants
    /// strictly increasing timestamps (the 32-bit RTP clock wraps after 13 h).
    last_pts: Option<(u32, i64)>,
}

// SAFETY: the libvpx context is only used through `&mut self`; libvpx keeps no thread-local
// state for it, so moving it to another thread is fine.
unsafe impl Send for VideoEncoder {}

impl std::fmt::Debug for VideoEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoEncoder")
            .field("config", &self.config)
            .field("cpu_used", &self.cpu_used)
            .finish_non_exhaustive()
    }
}

impl VideoEncoder {
    /// A VP8 encoder for frames of `config.width x config.height`.
    pub fn new(config: EncoderConfig) -> Result<VideoEncoder, VideoError> {
        check_config(&config)?;
        let (ctx, cfg) = Self::init(&config, DEFAULT_CPU_USED)?;
        Ok(VideoEncoder {
            ctx,
            cfg,
            config,
            cpu_used: DEFAULT_CPU_USED,
            last_pts: None,
        })
    }

    fn init(
        config: &EncoderConfig,
        cpu_used: i32,
    ) -> Result<(Box<vpx_codec_ctx_t>, vpx_codec_enc_cfg_t), VideoError> {
        let mut cfg = MaybeUninit::<vpx_codec_enc_cfg_t>::zeroed();
        // SAFETY: `vpx_codec_vp8_cx` returns a static interface; `enc_config_default` fills
        // the whole struct on success (checked before `assume_init`).
        let mut cfg = unsafe {
            let err = vpx_codec_enc_config_default(vpx_codec_vp8_cx(), cfg.as_mut_ptr(), 0);
            if err != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(code_error("vpx_codec_enc_config_default", err));
            }
            cfg.assume_init()
        };
        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_threads = config.threads;
        // Timestamps are the RTP clock's, so they can be passed through unchanged.
        cfg.g_timebase = vpx_rational {
            num: 1,
            den: crate::VIDEO_CLOCK_RATE as c_int,
        };
        cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
        cfg.g_pass = vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.g_lag_in_frames = 0;
        cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = config.bitrate_bps / 1000;
        cfg.rc_dropframe_thresh = 0;
        cfg.rc_resize_allowed = 0;
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 56;
        cfg.rc_undershoot_pct = 100;
        cfg.rc_overshoot_pct = 15;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1000;
        cfg.kf_mode = vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_min_dist = 0;
        cfg.kf_max_dist = KEYFRAME_MAX_INTERVAL;

        let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed());
        // SAFETY: `ctx` is writable memory for a context that `enc_init` initialises; `cfg` is
        // a complete configuration. The context is boxed so that its address (which libvpx
        // keeps internally) never moves.
        let mut ctx = unsafe {
            let err = vpx_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                vpx_codec_vp8_cx(),
                &cfg,
                0,
                VPX_ENCODER_ABI_VERSION as c_int,
            );
            if err != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(code_error("vpx_codec_enc_init", err));
            }
            Box::from_raw(Box::into_raw(ctx) as *mut vpx_codec_ctx_t)
        };
        // libwebrtc's max key frame size: 0.5 x the optimal buffer x fps / 10, in % of a
        // frame's share of the bitrate.
        let max_intra_pct = (cfg.rc_buf_optimal_sz / 2 * config.fps / 10).max(300);
        let controls = [
            (vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int, cpu_used),
            (vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD as c_int, 1),
            (vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY as c_int, 0),
            (
                vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT as c_int,
                max_intra_pct as c_int,
            ),
        ];
        for (id, value) in controls {
            // SAFETY: an initialised encoder context; each of these controls takes an int
            // (libvpx's `vpx_codec_control_` is variadic, the value is passed as `c_int`).
            let err = unsafe { vpx_codec_control_(&mut *ctx, id, value as c_int) };
            if err != vpx_codec_err_t::VPX_CODEC_OK {
                let e = ctx_error("vpx_codec_control", &mut ctx);
                // SAFETY: initialised above and not used after this.
                unsafe { vpx_codec_destroy(&mut *ctx) };
                return Err(e);
            }
        }
        Ok((ctx, cfg))
    }

    /// The configuration in force (bitrate and fps as last set).
    pub fn config(&self) -> EncoderConfig {
        self.config
    }

    /// Changes the target bitrate from the next frame on (the rate control is reconfigured,
    /// the encoder is not re-created and no keyframe is sent).
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), VideoError> {
        let config = EncoderConfig {
            bitrate_bps,
            ..self.config
        };
        check_config(&config)?;
        self.cfg.rc_target_bitrate = bitrate_bps / 1000;
        self.apply_cfg()?;
        self.config = config;
        Ok(())
    }

    /// Changes the frame rate the rate control plans for (timestamps still come from the
    /// caller; this only sets the per-frame share of the bitrate used before timestamps
    /// have told libvpx otherwise, and the keyframe size limit).
    pub fn set_fps(&mut self, fps: u32) -> Result<(), VideoError> {
        let config = EncoderConfig { fps, ..self.config };
        check_config(&config)?;
        self.config = config;
        Ok(())
    }

    /// libvpx's `cpu-used` for real-time encoding (-16..=16; higher magnitude is faster and
    /// worse; the default is [`DEFAULT_CPU_USED`]). For tuning and benchmarks.
    pub fn set_cpu_used(&mut self, cpu_used: i32) -> Result<(), VideoError> {
        if !(-16..=16).contains(&cpu_used) {
            return Err(VideoError::InvalidConfig {
                reason: "cpu_used must be in -16..=16",
            });
        }
        // SAFETY: an initialised encoder context; VP8E_SET_CPUUSED takes an int.
        let err = unsafe {
            vpx_codec_control_(
                &mut *self.ctx,
                vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int,
                cpu_used as c_int,
            )
        };
        if err != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(ctx_error("vpx_codec_control", &mut self.ctx));
        }
        self.cpu_used = cpu_used;
        Ok(())
    }

    fn apply_cfg(&mut self) -> Result<(), VideoError> {
        // SAFETY: an initialised encoder context and a complete configuration.
        let err = unsafe { vpx_codec_enc_config_set(&mut *self.ctx, &self.cfg) };
        if err != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(ctx_error("vpx_codec_enc_config_set", &mut self.ctx));
        }
        Ok(())
    }

    /// Encodes one frame taken at `pts_90khz` (RTP clock; wrapping is fine, see below) into
    /// `out`, reusing its buffer. Returns whether a frame was produced (always, with the
    /// settings used here; `false` would mean the rate control dropped it).
    ///
    /// A frame of another size than the encoder's re-creates the encoder at that size (the
    /// first frame after it is a keyframe): libvpx cannot grow a VP8 encoder in place.
    /// `force_keyframe` makes this frame a keyframe (answer to PLI/FIR or a new subscriber).
    pub fn encode(
        &mut self,
        frame: &I420Buffer,
        pts_90khz: u32,
        force_keyframe: bool,
        out: &mut EncodedFrame,
    ) -> Result<bool, VideoError> {
        out.data.clear();
        out.keyframe = false;
        if frame.width() != self.config.width || frame.height() != self.config.height {
            let config = EncoderConfig {
                width: frame.width(),
                height: frame.height(),
                ..self.config
            };
            check_config(&config)?;
            let (ctx, cfg) = Self::init(&config, self.cpu_used)?;
            // The old context is destroyed by Drop when replaced.
            *self = VideoEncoder {
                ctx,
                cfg,
                config,
                cpu_used: self.cpu_used,
                last_pts: None,
            };
        }
        let img = wrap_image(frame);
        let flags = if force_keyframe {
            VPX_EFLAG_FORCE_KF as vpx_enc_frame_flags_t
        } else {
            0
        };
        // Unwrap the RTP clock; a repeated or backward timestamp advances by one tick so
        // that libvpx's rate control still sees time moving.
        let pts = match self.last_pts {
            None => i64::from(pts_90khz),
            Some((last, last64)) => {
                last64 + i64::from((pts_90khz.wrapping_sub(last) as i32).max(1))
            }
        };
        self.last_pts = Some((pts_90khz, pts));
        let duration = (crate::VIDEO_CLOCK_RATE / self.config.fps) as c_ulong;
        // SAFETY: an initialised encoder; `img` points into `frame`'s planes, which outlive
        // the call (libvpx copies the picture into its own buffers with lag_in_frames 0).
        let err = unsafe {
            vpx_codec_encode(
                &mut *self.ctx,
                &img,
                pts as vpx_codec_pts_t,
                duration,
                flags,
                VPX_DL_REALTIME as c_ulong,
            )
        };
        if err != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(ctx_error("vpx_codec_encode", &mut self.ctx));
        }
        let mut iter: vpx_codec_iter_t = ptr::null();
        let mut produced = false;
        loop {
            // SAFETY: iterating the packets of the call above; each packet and its buffer
            // stay valid until the next `vpx_codec_encode`/`get_cx_data` on this context, and
            // the frame data is copied out before that.
            let pkt = unsafe { vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if pkt.is_null() {
                break;
            }
            // SAFETY: `pkt` is non-null and valid (above); `frame` is the active union field
            // for VPX_CODEC_CX_FRAME_PKT.
            unsafe {
                if (*pkt).kind == vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let f = (*pkt).data.frame;
                    // Keyframes vary in size; growing with headroom means a later, slightly
                    // larger one does not reallocate again.
                    let need = out.data.len() + f.sz as usize;
                    if out.data.capacity() < need {
                        out.data.reserve(2 * need - out.data.len());
                    }
                    out.data.extend_from_slice(std::slice::from_raw_parts(
                        f.buf as *const u8,
                        f.sz as usize,
                    ));
                    out.keyframe |= f.flags & VPX_FRAME_IS_KEY != 0;
                    produced = true;
                }
            }
        }
        Ok(produced)
    }
}

impl Drop for VideoEncoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `init` and is destroyed exactly once.
        unsafe { vpx_codec_destroy(&mut *self.ctx) };
    }
}

/// A VP8 decoder for one incoming track.
pub struct VideoDecoder {
    ctx: Box<vpx_codec_ctx_t>,
}

// SAFETY: as for the encoder: used only through `&mut self`, no thread-bound state.
unsafe impl Send for VideoDecoder {}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoDecoder").finish_non_exhaustive()
    }
}

impl VideoDecoder {
    /// A single-threaded VP8 decoder (VP8 decoding costs a fraction of encoding; see
    /// `benches/CODEC_CHOICE.md`).
    pub fn new() -> Result<VideoDecoder, VideoError> {
        let cfg = vpx_codec_dec_cfg_t {
            threads: 1,
            w: 0,
            h: 0,
        };
        let mut ctx = Box::new(MaybeUninit::<vpx_codec_ctx_t>::zeroed());
        // SAFETY: `ctx` is writable memory for a context that `dec_init` initialises; it is
        // boxed so its address never moves.
        let ctx = unsafe {
            let err = vpx_codec_dec_init_ver(
                ctx.as_mut_ptr(),
                vpx_codec_vp8_dx(),
                &cfg,
                0,
                VPX_DECODER_ABI_VERSION as c_int,
            );
            if err != vpx_codec_err_t::VPX_CODEC_OK {
                return Err(code_error("vpx_codec_dec_init", err));
            }
            Box::from_raw(Box::into_raw(ctx) as *mut vpx_codec_ctx_t)
        };
        Ok(VideoDecoder { ctx })
    }

    /// Decodes one VP8 frame into `dst`, resized to the stream's size when that changes.
    /// Returns whether a picture was output (`false` for an empty input or a frame libvpx
    /// decoded without showing). A corrupt frame is an error; the decoder stays usable and
    /// the next keyframe decodes normally.
    pub fn decode(&mut self, data: &[u8], dst: &mut I420Buffer) -> Result<bool, VideoError> {
        if data.is_empty() {
            return Ok(false);
        }
        let len = c_uint::try_from(data.len()).map_err(|_| VideoError::InvalidConfig {
            reason: "frame larger than 4 GiB",
        })?;
        // SAFETY: an initialised decoder; `data` is valid for `len` bytes during the call.
        let err =
            unsafe { vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0) };
        if err != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(ctx_error("vpx_codec_decode", &mut self.ctx));
        }
        let mut iter: vpx_codec_iter_t = ptr::null();
        let mut got = false;
        loop {
            // SAFETY: iterating the pictures of the decode above; each image stays valid
            // until the next decode call and is copied out before that.
            let img = unsafe { vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if img.is_null() {
                break;
            }
            // SAFETY: non-null image from libvpx, valid until the next decode.
            let img = unsafe { &*img };
            if img.fmt != vpx_img_fmt::VPX_IMG_FMT_I420 {
                return Err(VideoError::Codec {
                    function: "vpx_codec_get_frame",
                    message: format!("unexpected image format {:?}", img.fmt),
                });
            }
            dst.resize(img.d_w, img.d_h);
            let (w, h) = (img.d_w as usize, img.d_h as usize);
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (y, u, v) = dst.planes_mut();
            for (plane, out, pw, ph) in [(0, y, w, h), (1, u, cw, ch), (2, v, cw, ch)] {
                let stride = img.stride[plane] as usize;
                for row in 0..ph {
                    // SAFETY: libvpx's plane `plane` has `ph` rows of at least `pw` bytes at
                    // `stride` apart (its buffers are allocated for the aligned size).
                    let src = unsafe {
                        std::slice::from_raw_parts(img.planes[plane].add(row * stride), pw)
                    };
                    out[row * pw..(row + 1) * pw].copy_from_slice(src);
                }
            }
            got = true;
        }
        Ok(got)
    }
}

impl Drop for VideoDecoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed exactly once.
        unsafe { vpx_codec_destroy(&mut *self.ctx) };
    }
}
