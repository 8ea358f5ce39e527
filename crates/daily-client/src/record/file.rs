//! Where `record_to` streams the merged audio: a WAV file (`hound`; the header is rewritten
//! every second and fixed at close, so even a killed process leaves a readable file of all but
//! the last second) or an Ogg/Opus file (`.ogg`/`.opus`). Memory stays bounded: each write
//! goes to the file (through an 8 KB buffer for WAV, page by page for Ogg).

use crate::ClientError;
use std::path::{Path, PathBuf};

/// An open recording file.
pub(crate) trait FileSink: Send {
    /// Appends merged samples (interleaved when stereo).
    fn write(&mut self, pcm: &[i16]) -> Result<(), String>;
    /// Makes what was written so far readable (WAV: rewrites the header).
    fn flush(&mut self) -> Result<(), String>;
    /// Completes and closes the file.
    fn finish(self: Box<Self>) -> Result<(), String>;
    /// The file's path.
    fn path(&self) -> &Path;
}

/// The container a path's extension asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Wav,
    OggOpus,
}

/// `.wav` → WAV, `.ogg` / `.opus` → Ogg/Opus; anything else is refused.
pub(crate) fn kind_of(path: &Path) -> Result<FileKind, ClientError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("wav") => Ok(FileKind::Wav),
        Some("ogg") | Some("opus") => Ok(FileKind::OggOpus),
        _ => Err(ClientError::InvalidArgument(format!(
            "record_to needs a path ending in .wav, .ogg or .opus, got {:?}",
            path.display().to_string()
        ))),
    }
}

/// Creates (truncates) the file at `path` for `channels` channels at `rate` Hz.
pub(crate) fn open(
    path: &Path,
    rate: u32,
    channels: u16,
) -> Result<Box<dyn FileSink>, ClientError> {
    let io = |e: String| ClientError::Io(format!("cannot create {}: {e}", path.display()));
    match kind_of(path)? {
        FileKind::Wav => {
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let w = hound::WavWriter::create(path, spec).map_err(|e| io(e.to_string()))?;
            Ok(Box::new(Wav {
                w,
                path: path.to_owned(),
            }))
        }
        FileKind::OggOpus => super::ogg::OggFile::create(path, rate, channels)
            .map(|f| Box::new(f) as Box<dyn FileSink>)
            .map_err(io),
    }
}

struct Wav {
    w: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl FileSink for Wav {
    fn write(&mut self, pcm: &[i16]) -> Result<(), String> {
        let mut w = self.w.get_i16_writer(pcm.len() as u32);
        for s in pcm {
            w.write_sample(*s);
        }
        w.flush().map_err(|e| e.to_string())
    }

    fn flush(&mut self) -> Result<(), String> {
        self.w.flush().map_err(|e| e.to_string())
    }

    fn finish(self: Box<Self>) -> Result<(), String> {
        self.w.finalize().map_err(|e| e.to_string())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
