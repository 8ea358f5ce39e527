//! The few libopus calls the codec wrappers make ([`crate::codec`]), as safe functions. This is
//! the crate's only unsafe code.
//!
//! libopus comes from `opusic-sys`, which builds the libopus sources it ships (1.6.1) with CMake
//! and links them statically: no system libopus, so the Python wheel is self-contained and every
//! install codes with the same libopus (issue 18). Its build keeps libopus's defaults that matter
//! for speed: floating point, release optimisation, and SSE/SSE2/SSE4.1/AVX2 kernels chosen at
//! run time for the CPU (`OPUS_X86_MAY_HAVE_*`). The neural extensions (DRED, OSCE) are off.

use crate::MediaError;
use opusic_sys as sys;
use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

/// The linked libopus's version string, e.g. `"libopus 1.6.1"`.
pub fn version() -> &'static str {
    // SAFETY: opus_get_version_string returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::opus_get_version_string()) }
        .to_str()
        .unwrap_or("libopus (version not UTF-8)")
}

fn strerror(code: c_int) -> &'static str {
    // SAFETY: opus_strerror returns a pointer to a static NUL-terminated string for any code
    // ("unknown error" for codes it does not know).
    unsafe { CStr::from_ptr(sys::opus_strerror(code)) }
        .to_str()
        .unwrap_or("unknown error")
}

/// A libopus return value: negative is an error code, anything else a result.
fn check(function: &'static str, code: c_int) -> Result<c_int, MediaError> {
    if code < 0 {
        Err(MediaError::Opus {
            function,
            description: strerror(code),
        })
    } else {
        Ok(code)
    }
}

fn to_i32(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// An `OpusEncoder` owned by this value (freed on drop).
pub(crate) struct Encoder {
    st: NonNull<sys::OpusEncoder>,
    channels: usize,
}

// SAFETY: the encoder state is a block of memory owned by this value alone; libopus keeps no
// reference to it elsewhere and uses no thread-local state, so it may move between threads.
unsafe impl Send for Encoder {}

/// libopus's `OPUS_APPLICATION_*`.
#[derive(Clone, Copy)]
pub(crate) enum Application {
    Voip,
    Audio,
}

impl Encoder {
    /// `opus_encoder_create` for `rate` (8, 12, 16, 24 or 48 kHz) and 1 or 2 channels; libopus
    /// checks both.
    pub fn new(rate: u32, channels: u16, application: Application) -> Result<Self, MediaError> {
        let app = match application {
            Application::Voip => sys::OPUS_APPLICATION_VOIP,
            Application::Audio => sys::OPUS_APPLICATION_AUDIO,
        };
        let mut err: c_int = sys::OPUS_OK;
        // SAFETY: plain values and a pointer to a live c_int for the error code.
        let st = unsafe {
            sys::opus_encoder_create(to_i32(rate as usize), c_int::from(channels), app, &mut err)
        };
        check("opus_encoder_create", err)?;
        let st = NonNull::new(st).ok_or(MediaError::Opus {
            function: "opus_encoder_create",
            description: strerror(sys::OPUS_ALLOC_FAIL),
        })?;
        Ok(Encoder {
            st,
            channels: usize::from(channels),
        })
    }

    /// `opus_encoder_ctl` with one of the SET requests, which all take one `opus_int32`.
    fn set(&mut self, request: c_int, value: i32) -> Result<(), MediaError> {
        // SAFETY: `st` is a live encoder owned by `self`; every request passed here (the
        // OPUS_SET_* ones below) takes exactly one opus_int32 argument.
        check("opus_encoder_ctl", unsafe {
            sys::opus_encoder_ctl(self.st.as_ptr(), request, value)
        })
        .map(drop)
    }

    pub fn set_bitrate(&mut self, bps: i32) -> Result<(), MediaError> {
        self.set(sys::OPUS_SET_BITRATE_REQUEST, bps)
    }

    pub fn set_inband_fec(&mut self, on: bool) -> Result<(), MediaError> {
        self.set(sys::OPUS_SET_INBAND_FEC_REQUEST, i32::from(on))
    }

    pub fn set_packet_loss_perc(&mut self, percent: i32) -> Result<(), MediaError> {
        self.set(sys::OPUS_SET_PACKET_LOSS_PERC_REQUEST, percent)
    }

    pub fn set_complexity(&mut self, complexity: i32) -> Result<(), MediaError> {
        self.set(sys::OPUS_SET_COMPLEXITY_REQUEST, complexity)
    }

    pub fn set_dtx(&mut self, on: bool) -> Result<(), MediaError> {
        self.set(sys::OPUS_SET_DTX_REQUEST, i32::from(on))
    }

    /// `OPUS_GET_LOOKAHEAD`: the look-ahead in frames at the encoder's input rate.
    pub fn lookahead(&mut self) -> Result<i32, MediaError> {
        let mut v: i32 = 0;
        // SAFETY: OPUS_GET_LOOKAHEAD takes one opus_int32 pointer, to a live local here.
        check("opus_encoder_ctl", unsafe {
            sys::opus_encoder_ctl(
                self.st.as_ptr(),
                sys::OPUS_GET_LOOKAHEAD_REQUEST,
                &mut v as *mut i32,
            )
        })?;
        Ok(v)
    }

    pub fn reset(&mut self) -> Result<(), MediaError> {
        // SAFETY: OPUS_RESET_STATE takes no argument.
        check("opus_encoder_ctl", unsafe {
            sys::opus_encoder_ctl(self.st.as_ptr(), sys::OPUS_RESET_STATE)
        })
        .map(drop)
    }

    /// `opus_encode` of all of `pcm` (interleaved; its length a multiple of the channel count
    /// and a frame size libopus takes, which libopus checks) into `out`; returns the packet's
    /// length in bytes.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, MediaError> {
        let frames = pcm.len() / self.channels;
        // SAFETY: libopus reads frames × channels <= pcm.len() samples from `pcm` and writes at
        // most out.len() bytes (max_data_bytes, clamped to i32) to `out`; `st` is live.
        let n = unsafe {
            sys::opus_encode(
                self.st.as_ptr(),
                pcm.as_ptr(),
                to_i32(frames),
                out.as_mut_ptr(),
                to_i32(out.len()),
            )
        };
        Ok(check("opus_encode", n)? as usize)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `st` came from opus_encoder_create and is freed once, here.
        unsafe { sys::opus_encoder_destroy(self.st.as_ptr()) }
    }
}

/// An `OpusDecoder` owned by this value (freed on drop).
pub(crate) struct Decoder {
    st: NonNull<sys::OpusDecoder>,
    channels: usize,
}

// SAFETY: as for Encoder: state owned by this value alone, no thread-local state in libopus.
unsafe impl Send for Decoder {}

impl Decoder {
    /// `opus_decoder_create` producing `channels` (1 or 2) at `rate`.
    pub fn new(rate: u32, channels: u16) -> Result<Self, MediaError> {
        let mut err: c_int = sys::OPUS_OK;
        // SAFETY: plain values and a pointer to a live c_int for the error code.
        let st = unsafe {
            sys::opus_decoder_create(to_i32(rate as usize), c_int::from(channels), &mut err)
        };
        check("opus_decoder_create", err)?;
        let st = NonNull::new(st).ok_or(MediaError::Opus {
            function: "opus_decoder_create",
            description: strerror(sys::OPUS_ALLOC_FAIL),
        })?;
        Ok(Decoder {
            st,
            channels: usize::from(channels),
        })
    }

    /// `opus_decode` of `packet` into `out` (interleaved), whose length sets the frames asked
    /// for. An empty `packet` is a lost one (libopus's NULL data: concealment, or with `fec` the
    /// FEC data of the *next* packet). Returns the frames decoded.
    pub fn decode(
        &mut self,
        packet: &[u8],
        out: &mut [i16],
        fec: bool,
    ) -> Result<usize, MediaError> {
        let data = if packet.is_empty() {
            std::ptr::null()
        } else {
            packet.as_ptr()
        };
        let frames = out.len() / self.channels;
        // SAFETY: libopus reads packet.len() bytes from `data` (NULL with length 0 for a lost
        // packet) and writes at most frames × channels <= out.len() samples to `out`.
        let n = unsafe {
            sys::opus_decode(
                self.st.as_ptr(),
                data,
                to_i32(packet.len()),
                out.as_mut_ptr(),
                to_i32(frames),
                c_int::from(fec),
            )
        };
        Ok(check("opus_decode", n)? as usize)
    }

    pub fn reset(&mut self) -> Result<(), MediaError> {
        // SAFETY: OPUS_RESET_STATE takes no argument.
        check("opus_decoder_ctl", unsafe {
            sys::opus_decoder_ctl(self.st.as_ptr(), sys::OPUS_RESET_STATE)
        })
        .map(drop)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `st` came from opus_decoder_create and is freed once, here.
        unsafe { sys::opus_decoder_destroy(self.st.as_ptr()) }
    }
}

/// `opus_packet_get_nb_samples`: the packet's duration in frames at `rate`, from its TOC byte
/// and frame count.
pub(crate) fn packet_nb_samples(packet: &[u8], rate: u32) -> Result<usize, MediaError> {
    // SAFETY: libopus reads at most packet.len() bytes (clamped to i32) from `packet`.
    let n = unsafe {
        sys::opus_packet_get_nb_samples(
            packet.as_ptr(),
            to_i32(packet.len()),
            to_i32(rate as usize),
        )
    };
    Ok(check("opus_packet_get_nb_samples", n)? as usize)
}
