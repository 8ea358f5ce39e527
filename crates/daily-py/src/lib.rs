//! daily-py
