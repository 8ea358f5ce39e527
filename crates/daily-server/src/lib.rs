//! daily-server
