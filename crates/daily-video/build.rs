//! Links libvpx statically when the system has its static library (Debian's libvpx-dev ships
//! `libvpx.a`), so that the Python wheel needs no libvpx at run time, also when pip builds it
//! (maturin's PEP 517 hook does not copy shared libraries into the wheel) (issue 18).
//!
//! env-libvpx-sys asks pkg-config for libvpx and tells the linker `-lvpx`. pkg-config drops the
//! system directory from its answer, so the linker looks in its own directories, where it
//! prefers `libvpx.so`. This script finds `libvpx.a` the way the C compiler would
//! (`cc -print-file-name`) and copies it into a directory of its own that it adds to the search
//! path: the linker, which searches `-L` directories before its default ones, then finds only the
//! static library for `-lvpx`. Without `libvpx.a` nothing changes (libvpx stays dynamic), and
//! `DAILY_VPX_DYNAMIC=1` keeps it dynamic on purpose.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DAILY_VPX_DYNAMIC");
    println!("cargo:rerun-if-env-changed=CC");
    if std::env::var_os("DAILY_VPX_DYNAMIC").is_some_and(|v| v != "0") {
        return;
    }
    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();
    let found = compiler
        .to_command()
        .arg("-print-file-name=libvpx.a")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    // The compiler echoes the bare name back when it has no such file.
    let Some(archive) = found.filter(|p| p.is_absolute() && p.is_file()) else {
        println!("cargo:warning=libvpx.a not found: libvpx is linked dynamically");
        return;
    };
    let archive = archive.canonicalize().unwrap_or(archive);
    println!("cargo:rerun-if-changed={}", archive.display());
    let dir =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("vpx-static");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/vpx-static");
    std::fs::copy(&archive, dir.join("libvpx.a")).expect("copy libvpx.a into OUT_DIR");
    println!("cargo:rustc-link-search=native={}", dir.display());
}
