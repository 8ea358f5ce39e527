//! Server-side recording, the recorder's part (the SFU's is `sfu/recording.rs`).
//!
//! - `core.rs`: one recording's rules without IO (reordering, gaps, the mix);
//! - the thread that runs them and writes the files comes with the Ogg/Opus writer.

pub(crate) mod core;
#[cfg(test)]
mod tests;
