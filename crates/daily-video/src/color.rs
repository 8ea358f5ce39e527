//! Pixel formats, the I420 frame buffer and conversions between them.
//!
//! Conversions go through the `yuv` crate (SIMD, maintained) with BT.601 limited range, the
//! matrix and range WebRTC uses for camera video (libwebrtc's `ConvertFromI420`/libyuv's
//! `I420ToARGB` family), so colours match what a browser shows for the same stream.
//! `yuv` 0.8 has no ARGB/ABGR kernels; those two are handled as RGBA/BGRA with each pixel's
//! bytes rotated by one (a byte permutation, no colour arithmetic of ours).

use crate::VideoError;
use yuv::{
    BufferStoreMut, YuvConversionMode, YuvPlanarImage, YuvPlanarImageMut, YuvRange,
    YuvStandardMatrix,
};

/// Layout of a raw frame handed to or received from the SDK. The names are daily-python's
/// `color_format` strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColorFormat {
    /// 4 bytes per pixel: R, G, B, A.
    Rgba,
    /// 4 bytes per pixel: B, G, R, A.
    Bgra,
    /// 4 bytes per pixel: A, R, G, B.
    Argb,
    /// 4 bytes per pixel: A, B, G, R.
    Abgr,
    /// 3 bytes per pixel: R, G, B.
    Rgb,
    /// Planar 4:2:0: Y (`w*h`), then U and V (`ceil(w/2)*ceil(h/2)` each), no padding.
    I420,
}

impl ColorFormat {
    /// Every format, in declaration order.
    pub const ALL: [ColorFormat; 6] = [
        ColorFormat::Rgba,
        ColorFormat::Bgra,
        ColorFormat::Argb,
        ColorFormat::Abgr,
        ColorFormat::Rgb,
        ColorFormat::I420,
    ];

    /// Parses daily-python's name (`"RGBA"`, `"BGRA"`, `"ARGB"`, `"ABGR"`, `"RGB"`, `"I420"`;
    /// exact, upper case).
    pub fn parse(name: &str) -> Option<ColorFormat> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The name [`ColorFormat::parse`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            ColorFormat::Rgba => "RGBA",
            ColorFormat::Bgra => "BGRA",
            ColorFormat::Argb => "ARGB",
            ColorFormat::Abgr => "ABGR",
            ColorFormat::Rgb => "RGB",
            ColorFormat::I420 => "I420",
        }
    }

    /// Bytes of one `width x height` frame in this format (no row padding).
    pub fn frame_size(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        match self {
            ColorFormat::Rgba | ColorFormat::Bgra | ColorFormat::Argb | ColorFormat::Abgr => {
                w * h * 4
            }
            ColorFormat::Rgb => w * h * 3,
            ColorFormat::I420 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        }
    }
}

impl std::fmt::Display for ColorFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One I420 picture in a single contiguous buffer: Y (stride `width`), then U and V (stride
/// `ceil(width/2)`, `ceil(height/2)` rows). Odd sizes are allowed. The buffer is reused: the
/// decoder and [`to_i420`] resize it only when the size changes.
#[derive(Clone, Default)]
pub struct I420Buffer {
    width: u32,
    height: u32,
    data: Vec<u8>,
    /// Rows of ARGB/ABGR rotated to RGBA/BGRA by [`to_i420`]; kept here so that converting
    /// those formats allocates nothing per frame. Not part of the picture.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for I420Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I420Buffer")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl PartialEq for I420Buffer {
    fn eq(&self, other: &Self) -> bool {
        self.width == other.width && self.height == other.height && self.data == other.data
    }
}

impl Eq for I420Buffer {}

impl I420Buffer {
    /// A black (Y 16, U/V 128: limited range) picture of `width x height`.
    pub fn new(width: u32, height: u32) -> I420Buffer {
        let mut b = I420Buffer::default();
        b.resize(width, height);
        b
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width (and stride) of the U and V planes: `ceil(width/2)`.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Rows of the U and V planes: `ceil(height/2)`.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    fn y_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    fn c_len(&self) -> usize {
        self.chroma_width() as usize * self.chroma_height() as usize
    }

    /// Changes the size. The content is reset to black when the size changes and kept when
    /// it does not (so calling it every frame costs nothing).
    pub fn resize(&mut self, width: u32, height: u32) {
        if width == self.width && height == self.height && !self.data.is_empty() {
            return;
        }
        self.width = width;
        self.height = height;
        let (y, c) = (self.y_len(), self.c_len());
        self.data.clear();
        self.data.resize(y, 16);
        self.data.resize(y + 2 * c, 128);
    }

    /// The luma plane (`width` bytes per row).
    pub fn y(&self) -> &[u8] {
        &self.data[..self.y_len()]
    }

    /// The U (Cb) plane (`chroma_width` bytes per row).
    pub fn u(&self) -> &[u8] {
        let (y, c) = (self.y_len(), self.c_len());
        &self.data[y..y + c]
    }

    /// The V (Cr) plane (`chroma_width` bytes per row).
    pub fn v(&self) -> &[u8] {
        let (y, c) = (self.y_len(), self.c_len());
        &self.data[y + c..y + 2 * c]
    }

    /// The luma plane, writable.
    pub fn y_mut(&mut self) -> &mut [u8] {
        let y = self.y_len();
        &mut self.data[..y]
    }

    /// The U plane, writable.
    pub fn u_mut(&mut self) -> &mut [u8] {
        let (y, c) = (self.y_len(), self.c_len());
        &mut self.data[y..y + c]
    }

    /// The V plane, writable.
    pub fn v_mut(&mut self) -> &mut [u8] {
        let (y, c) = (self.y_len(), self.c_len());
        &mut self.data[y + c..y + 2 * c]
    }

    /// All three planes, writable at once.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (y, c) = (self.y_len(), self.c_len());
        let (yp, rest) = self.data.split_at_mut(y);
        let (up, vp) = rest.split_at_mut(c);
        (yp, up, vp)
    }

    /// The whole picture in the packed I420 layout ([`ColorFormat::I420`]).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The whole picture, writable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

pub(crate) fn check_dimensions(width: u32, height: u32) -> Result<(), VideoError> {
    if width == 0 || height == 0 {
        return Err(VideoError::InvalidDimensions {
            width,
            height,
            reason: "zero size",
        });
    }
    Ok(())
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), VideoError> {
    if expected != actual {
        return Err(VideoError::BufferSize {
            what,
            expected,
            actual,
        });
    }
    Ok(())
}

const RANGE: YuvRange = YuvRange::Limited;
const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;
const MODE: YuvConversionMode = YuvConversionMode::Balanced;

/// Rows of ARGB/ABGR rotated per batch: even (so chroma rows never straddle two batches) and
/// small enough to stay in cache (80 KB at 1280 px).
const STRIP_ROWS: usize = 16;

fn conversion_error(format: ColorFormat, e: yuv::YuvError) -> VideoError {
    VideoError::Conversion {
        format: format.as_str(),
        reason: e.to_string(),
    }
}

/// Converts one packed frame (or copies an I420 one) into `dst`, which is resized to
/// `width x height`. `src` must be exactly [`ColorFormat::frame_size`] bytes. Alpha is ignored.
pub fn to_i420(
    src: &[u8],
    format: ColorFormat,
    width: u32,
    height: u32,
    dst: &mut I420Buffer,
) -> Result<(), VideoError> {
    check_dimensions(width, height)?;
    check_len("source frame", format.frame_size(width, height), src.len())?;
    dst.resize(width, height);
    match format {
        ColorFormat::I420 => {
            dst.data.copy_from_slice(src);
            Ok(())
        }
        ColorFormat::Rgba | ColorFormat::Bgra | ColorFormat::Rgb => {
            packed_to_i420(src, format, width, height, 0, dst)
        }
        ColorFormat::Argb | ColorFormat::Abgr => {
            // Rotate a strip of rows at a time into the buffer's scratch (A,R,G,B -> R,G,B,A;
            // A,B,G,R -> B,G,R,A) and convert it as RGBA/BGRA.
            let row = width as usize * 4;
            let mut scratch = std::mem::take(&mut dst.scratch);
            let mut result = Ok(());
            for (i, strip) in src.chunks(row * STRIP_ROWS).enumerate() {
                scratch.resize(strip.len(), 0);
                for (d, s) in scratch.chunks_exact_mut(4).zip(strip.chunks_exact(4)) {
                    // As a little-endian u32 the alpha byte is the lowest: rotating right by
                    // 8 bits moves it last. (A u32 rotate vectorises; `slice::rotate_left` on
                    // 4 bytes did not and was 20 times slower than the conversion.)
                    let v = u32::from_le_bytes([s[0], s[1], s[2], s[3]]).rotate_right(8);
                    d.copy_from_slice(&v.to_le_bytes());
                }
                let rows = (strip.len() / row) as u32;
                result = packed_to_i420(&scratch, format, width, rows, i * STRIP_ROWS, dst);
                if result.is_err() {
                    break;
                }
            }
            dst.scratch = scratch;
            result
        }
    }
}

/// Converts `rows` rows of a packed frame into `dst` starting at luma row `first_row` (even).
fn packed_to_i420(
    src: &[u8],
    format: ColorFormat,
    width: u32,
    rows: u32,
    first_row: usize,
    dst: &mut I420Buffer,
) -> Result<(), VideoError> {
    let (w, cw) = (width as usize, dst.chroma_width() as usize);
    let c_rows = rows.div_ceil(2) as usize;
    let (y, u, v) = dst.planes_mut();
    let y = &mut y[first_row * w..(first_row + rows as usize) * w];
    let u = &mut u[first_row / 2 * cw..(first_row / 2 + c_rows) * cw];
    let v = &mut v[first_row / 2 * cw..(first_row / 2 + c_rows) * cw];
    let mut image = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: cw as u32,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: cw as u32,
        width,
        height: rows,
    };
    let r = match format {
        ColorFormat::Rgba | ColorFormat::Argb => {
            yuv::rgba_to_yuv420(&mut image, src, width * 4, RANGE, MATRIX, MODE)
        }
        ColorFormat::Bgra | ColorFormat::Abgr => {
            yuv::bgra_to_yuv420(&mut image, src, width * 4, RANGE, MATRIX, MODE)
        }
        ColorFormat::Rgb => yuv::rgb_to_yuv420(&mut image, src, width * 3, RANGE, MATRIX, MODE),
        ColorFormat::I420 => unreachable!("I420 is copied"),
    };
    r.map_err(|e| conversion_error(format, e))
}

/// Converts `src` into `format` in `dst`, which is resized to [`ColorFormat::frame_size`]
/// (its capacity is reused). Alpha is written as 255.
pub fn from_i420(
    src: &I420Buffer,
    format: ColorFormat,
    dst: &mut Vec<u8>,
) -> Result<(), VideoError> {
    check_dimensions(src.width, src.height)?;
    dst.resize(format.frame_size(src.width, src.height), 0);
    if format == ColorFormat::I420 {
        dst.copy_from_slice(&src.data);
        return Ok(());
    }
    let cw = src.chroma_width();
    let image = YuvPlanarImage {
        y_plane: src.y(),
        y_stride: src.width,
        u_plane: src.u(),
        u_stride: cw,
        v_plane: src.v(),
        v_stride: cw,
        width: src.width,
        height: src.height,
    };
    let w = src.width;
    let r = match format {
        ColorFormat::Rgba | ColorFormat::Argb => {
            yuv::yuv420_to_rgba(&image, dst, w * 4, RANGE, MATRIX)
        }
        ColorFormat::Bgra | ColorFormat::Abgr => {
            yuv::yuv420_to_bgra(&image, dst, w * 4, RANGE, MATRIX)
        }
        ColorFormat::Rgb => yuv::yuv420_to_rgb(&image, dst, w * 3, RANGE, MATRIX),
        ColorFormat::I420 => unreachable!("I420 is copied"),
    };
    r.map_err(|e| conversion_error(format, e))?;
    if matches!(format, ColorFormat::Argb | ColorFormat::Abgr) {
        // R,G,B,A -> A,R,G,B and B,G,R,A -> A,B,G,R.
        for px in dst.chunks_exact_mut(4) {
            let v = u32::from_le_bytes([px[0], px[1], px[2], px[3]]).rotate_left(8);
            px.copy_from_slice(&v.to_le_bytes());
        }
    }
    Ok(())
}
