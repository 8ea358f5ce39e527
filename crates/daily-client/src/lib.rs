//! daily-client
