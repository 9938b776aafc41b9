//! Building configurations for tests: overlays compiled with the real dtc
//! and merged into QEMU virt's DTB with fdtoverlay (`cargo xtask setup`
//! installs both).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Module, ModuleContents, image};
use crate::dt::Fdt;
use crate::hw::{self, Hardware};
use crate::mm::address::{PhysAddr, PhysRange};
use crate::mm::hyp_memory;

/// Where the tests pretend the bootloader put things (as xtask's boot.scr does).
pub const IMAGE: u64 = 0x4020_0000;
pub const IMAGE_SIZE: u64 = 0x10_0000;
pub const DTB: u64 = 0x4800_0000;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .expect("dtc and fdtoverlay are installed (cargo xtask setup)");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// QEMU virt's DTB with an overlay whose `__overlay__` body is `body`.
pub fn merged(body: &str) -> Vec<u8> {
    merged_into("qemu-virt-gicv3.dtb", body)
}

/// `board` (a file in `dtb/boards`) with an overlay whose `__overlay__`
/// body is `body`.
pub fn merged_into(board: &str, body: &str) -> Vec<u8> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tessera-config-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let dts = format!(
        "/dts-v1/;\n/plugin/;\n/ {{\n fragment@0 {{\n target-path = \"/\";\n __overlay__ {{\n{body}\n }};\n }};\n}};\n"
    );
    std::fs::write(dir.join("o.dts"), dts).unwrap();
    run(Command::new("dtc")
        .args(["-q", "-@", "-I", "dts", "-O", "dtb", "-o"])
        .arg(dir.join("o.dtbo"))
        .arg(dir.join("o.dts")));
    run(Command::new("fdtoverlay")
        .arg("-i")
        .arg(workspace().join("dtb/boards").join(board))
        .arg("-o")
        .arg(dir.join("m.dtb"))
        .arg(dir.join("o.dtbo")));
    let blob = std::fs::read(dir.join("m.dtb")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    blob
}

/// Module headers by load address; anything else reads as a raw binary.
#[derive(Default)]
pub struct Headers(pub HashMap<u64, [u8; image::HEADER_SIZE]>);

impl ModuleContents for Headers {
    fn header(&self, module: &Module<'_>) -> Option<[u8; image::HEADER_SIZE]> {
        self.0.get(&module.range.start().0).copied()
    }
}

pub fn hardware<'a>(fdt: &Fdt<'a>) -> Hardware<'a> {
    let dtb = PhysRange::new(PhysAddr(DTB), fdt.total_size() as u64);
    let mut hardware = hw::discover(fdt, 0, dtb).expect("QEMU virt's DTB is valid");
    hyp_memory::reserve(
        &mut hardware.memory,
        PhysRange::new(PhysAddr(IMAGE), IMAGE_SIZE).unwrap(),
    )
    .unwrap();
    hardware
}

/// One of the shipped example overlays with every module 64 KiB long (the
/// size U-Boot would write), as the `__overlay__` body.
pub fn example_body(file: &str) -> String {
    let source = std::fs::read_to_string(workspace().join("dtb/overlays").join(file)).unwrap();
    let source = source.replace("0x0 0x0>;", "0x0 0x10000>;");
    source
        .split_once("__overlay__ {")
        .and_then(|(_, rest)| rest.rsplit_once("};\n\t};\n};"))
        .map(|(body, _)| body.to_string())
        .unwrap()
}

/// xorshift64: deterministic, so a failure reproduces.
pub fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `original` with one to four bytes in `range` zeroed, set, flipped or
/// randomised, drawn from `state`.
#[allow(
    clippy::cast_possible_truncation,
    reason = "random numbers are cut to an offset and a byte on purpose"
)]
pub fn corrupt(original: &[u8], range: std::ops::Range<usize>, state: &mut u64) -> Vec<u8> {
    let mut blob = original.to_vec();
    for _ in 0..1 + next(state) % 4 {
        let at = range.start + (next(state) as usize) % range.len();
        blob[at] = match next(state) % 4 {
            0 => 0,
            1 => 0xff,
            2 => blob[at] ^ (1 << (next(state) % 8)),
            _ => next(state) as u8,
        };
    }
    blob
}
