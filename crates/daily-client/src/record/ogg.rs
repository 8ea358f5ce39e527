//! Ogg/Opus recording files: the merged audio encoded by libopus (`daily_media::OpusEncoder`)
//! in 20 ms frames, written by `daily_media::ogg_opus`.

use super::file::FileSink;
use std::path::Path;

/// An Ogg/Opus recording file.
pub(crate) struct OggFile;

impl OggFile {
    pub(crate) fn create(_path: &Path, _rate: u32, _channels: u16) -> Result<OggFile, String> {
        Err("Ogg/Opus recording is not available yet".into())
    }
}

impl FileSink for OggFile {
    fn write(&mut self, _pcm: &[i16]) -> Result<(), String> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), String> {
        Ok(())
    }
    fn path(&self) -> &Path {
        Path::new("")
    }
}
