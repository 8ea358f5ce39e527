//! libasound, loaded at run time (see `build.rs` for why): [`load`] runs before the first cpal
//! call and fills the table the generated trampolines (`snd_*`, hidden symbols of this crate)
//! jump through. Without libasound on the machine, [`load`] returns
//! [`SoundError::Unavailable`] and everything else in `daily` works as before.

use crate::SoundError;

/// Loads libasound (once per process). A no-op where libasound is linked as usual.
pub(crate) fn load() -> Result<(), SoundError> {
    imp::load().map_err(|reason| SoundError::Unavailable { reason })
}

#[cfg(daily_alsa_dlopen)]
mod imp {
    #![allow(unsafe_code)]

    use std::cell::UnsafeCell;
    use std::ffi::CStr;
    use std::sync::OnceLock;

    include!(concat!(env!("OUT_DIR"), "/alsa_symbols.rs"));

    /// The address each trampoline jumps to, in [`SYMBOLS`] order.
    #[repr(transparent)]
    struct Table(UnsafeCell<[usize; SYMBOLS.len()]>);

    // SAFETY: written once, inside `LOADED`'s initialiser, before any trampoline can run (they
    // are reached only through cpal, which this crate calls after `load` has returned Ok), and
    // only read (by the trampolines) afterwards; `OnceLock` orders the writes before the reads
    // of every thread that went through `load`, and cpal's threads are started after it.
    unsafe impl Sync for Table {}

    static TABLE: Table = Table(UnsafeCell::new([0; SYMBOLS.len()]));
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();

    core::arch::global_asm!(
        include_str!(concat!(env!("OUT_DIR"), "/alsa_trampolines.s")),
        table = sym TABLE,
        options(att_syntax)
    );

    /// Stands in for a function this machine's libasound lacks (older than the alsa crate
    /// expects): returns -ENOSYS, ALSA's way of saying "not implemented".
    extern "C" fn missing() -> i32 {
        -38
    }

    fn dlerror() -> String {
        // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl* call
        // on this thread; it is copied at once.
        unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown error".into()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        }
    }

    pub(super) fn load() -> Result<(), String> {
        LOADED
            .get_or_init(|| {
                // SAFETY: dlopen/dlsym with NUL-terminated names; the handle is never closed, so
                // the addresses stay valid for the life of the process. The table is written
                // before any trampoline runs (see `Table`).
                unsafe {
                    let h = libc::dlopen(
                        c"libasound.so.2".as_ptr(),
                        libc::RTLD_NOW | libc::RTLD_LOCAL,
                    );
                    if h.is_null() {
                        return Err(format!(
                            "cannot load libasound.so.2 (ALSA; Debian's libasound2): {}",
                            dlerror()
                        ));
                    }
                    let table = &mut *TABLE.0.get();
                    let mut absent = Vec::new();
                    for (slot, name) in table.iter_mut().zip(SYMBOLS.iter()) {
                        let f = libc::dlsym(h, name.as_ptr());
                        *slot = if f.is_null() {
                            absent.push(name.to_string_lossy());
                            missing as *const () as usize
                        } else {
                            f as usize
                        };
                    }
                    if !absent.is_empty() {
                        tracing::debug!(
                            ?absent,
                            "libasound lacks functions the alsa crate knows; they return -ENOSYS"
                        );
                    }
                    Ok(())
                }
            })
            .clone()
    }
}

#[cfg(not(daily_alsa_dlopen))]
mod imp {
    pub(super) fn load() -> Result<(), String> {
        Ok(())
    }
}
