//! Shared check functions of the fuzz targets (`fuzz_targets/*.rs`). The corpus tests in the
//! workspace include the same files by path, so CI runs the same assertions on the corpus
//! (plus deterministic mutants, `mutate.rs`) without nightly.

pub mod mutate;
pub mod proto_checks;
pub mod rtc_checks;
