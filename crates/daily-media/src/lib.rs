//! daily-media
