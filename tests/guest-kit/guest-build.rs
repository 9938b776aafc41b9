//! Build script of every guest built on the kit (their Cargo.toml says
//! `build = "../guest-kit/guest-build.rs"`): links the bare-metal guest with
//! the kit's linker script.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    match std::env::var("DEP_TESSERA_GUEST_KIT_LINK_SCRIPT") {
        Ok(script) => {
            println!("cargo:rustc-link-arg-bins=-T{script}");
            println!("cargo:rerun-if-changed={script}");
        }
        Err(_) => {
            eprintln!("tessera-guest-kit did not say where its linker script is");
            std::process::exit(1);
        }
    }
}
