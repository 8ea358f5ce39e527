//! [`MediaSource`]: an audio or a video source, as the call core's source handle.

use crate::call::SourceHandle;
use crate::source::AudioSource;
use crate::video::VideoSource;

/// What a published track carries: PCM from an [`AudioSource`] or frames from a
/// [`VideoSource`]. Compared by identity.
#[derive(Clone)]
pub enum MediaSource {
    /// Audio (microphone, custom audio tracks).
    Audio(AudioSource),
    /// Video (camera, screen, custom video tracks).
    Video(VideoSource),
}

impl SourceHandle for MediaSource {
    fn same_source(&self, other: &Self) -> bool {
        match (self, other) {
            (MediaSource::Audio(a), MediaSource::Audio(b)) => a.ptr_eq(b),
            (MediaSource::Video(a), MediaSource::Video(b)) => a.ptr_eq(b),
            _ => false,
        }
    }
}

impl From<AudioSource> for MediaSource {
    fn from(s: AudioSource) -> Self {
        MediaSource::Audio(s)
    }
}

impl From<VideoSource> for MediaSource {
    fn from(s: VideoSource) -> Self {
        MediaSource::Video(s)
    }
}
