//! For the bare-metal target: a static executable at a fixed address, which
//! Linux runs without relocating it (there is no libc to apply relocations
//! of a position-independent one).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        // After `.cargo/config.toml`'s `-pie` for this target (the guests'
        // setting): cargo passes a build script's link arguments last, so
        // this one wins for init-clock alone.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        // Above Linux's mmap_min_addr, where a static arm64 program goes.
        println!("cargo:rustc-link-arg-bins=--image-base=0x400000");
    }
}
