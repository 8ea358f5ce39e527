//! Makes libasound a run-time dependency instead of a load-time one (issue 18).
//!
//! cpal reaches ALSA through alsa-sys, whose build script tells the linker `-lasound`: the
//! Python extension would then carry `NEEDED libasound.so.2`, and `import daily` would fail on
//! every machine without ALSA's library (slim containers, where bots run), for a feature most
//! bots never use. Bundling libasound in the wheel is no answer either: ALSA's plugins (the
//! PulseAudio/PipeWire one) link the system's libasound, so a process would hold two, and the
//! bundled one looks for plugins where the build machine keeps them.
//!
//! So on x86_64 Linux (glibc) this script
//! - writes an empty `libasound.a` into a directory of its own and puts that directory on the
//!   link search path: `-lasound` then resolves to it (the linker searches `-L` directories
//!   before its own, and alsa-sys's pkg-config answer names no directory for a system
//!   library), and no `NEEDED libasound.so.2` is recorded;
//! - generates one trampoline per libasound function the alsa and cpal crates call
//!   (`src/libasound/symbols.txt`): a hidden symbol of that name that jumps through a table
//!   `src/libasound.rs` fills with `dlopen("libasound.so.2")` + `dlsym` before the first cpal
//!   call.
//!
//! Elsewhere nothing changes: alsa-sys links libasound as usual and loading is a no-op.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(daily_alsa_dlopen)");
    println!("cargo:rerun-if-changed=src/libasound/symbols.txt");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if !(arch == "x86_64" && os == "linux" && env == "gnu") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let names: Vec<String> = std::fs::read_to_string("src/libasound/symbols.txt")
        .expect("src/libasound/symbols.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();

    let mut rs = format!(
        "/// The libasound functions the trampolines forward to, in table order.\npub(crate) const SYMBOLS: [&core::ffi::CStr; {}] = [\n",
        names.len()
    );
    let mut asm = String::from(".pushsection .text.daily_alsa_trampolines,\"ax\",@progbits\n");
    for (i, n) in names.iter().enumerate() {
        assert!(
            n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "bad symbol name {n:?}"
        );
        writeln!(rs, "    c\"{n}\",").unwrap();
        write!(
            asm,
            ".globl {n}\n.hidden {n}\n.type {n},@function\n.p2align 3\n{n}:\n    jmp *({{table}}+{off})(%rip)\n.size {n},.-{n}\n",
            off = i * 8
        )
        .unwrap();
    }
    rs.push_str("];\n");
    asm.push_str(".popsection\n");
    std::fs::write(out.join("alsa_symbols.rs"), rs).expect("write alsa_symbols.rs");
    std::fs::write(out.join("alsa_trampolines.s"), asm).expect("write alsa_trampolines.s");

    // An empty archive ("!<arch>\n") for `-lasound` to find first.
    let stub = out.join("libasound-stub");
    std::fs::create_dir_all(&stub).expect("create the stub directory");
    std::fs::write(stub.join("libasound.a"), b"!<arch>\n").expect("write libasound.a");
    println!("cargo:rustc-link-search=native={}", stub.display());
    println!("cargo:rustc-cfg=daily_alsa_dlopen");
}
