//! From the linked ELF to the arm64 `Image` that QEMU and U-Boot load, with
//! the checks that keep it loadable: the header at offset 0, a true
//! `image_size`, and only relocations the boot code applies.

use std::fmt;

use anyhow::{Context, Result, bail, ensure};
use object::{Object, ObjectSection, ObjectSegment};

/// Offsets in the arm64 Image header (Linux `Documentation/arch/arm64/booting.rst`).
const HEADER_TEXT_OFFSET: usize = 0x08;
const HEADER_IMAGE_SIZE: usize = 0x10;
const HEADER_FLAGS: usize = 0x18;
const HEADER_MAGIC: usize = 0x38;
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
/// Flags bit 3: the image may be placed at any 2 MiB-aligned address.
const FLAG_ANYWHERE: u64 = 1 << 3;
/// R_AARCH64_RELATIVE, the only relocation entry.S applies.
const R_AARCH64_RELATIVE: u64 = 1027;
/// Size of an Elf64_Rela entry.
const RELA_SIZE: usize = 24;

/// Section sizes, grouped by how the EL2 map treats them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub text: u64,
    /// Read-only after relocation: constants, relocations, GOT, dynamic tables.
    pub rodata: u64,
    pub data: u64,
    /// Zeroed at boot: BSS (page tables included) and the boot stacks.
    pub bss: u64,
    /// Bytes of the Image file.
    pub file: u64,
}

impl fmt::Display for Sizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kib = |bytes: u64| bytes as f64 / 1024.0;
        write!(
            f,
            "{:.1} KiB file; text {:.1} KiB, rodata {:.1} KiB, data {:.1} KiB, bss {:.1} KiB (page tables and stacks)",
            kib(self.file),
            kib(self.text),
            kib(self.rodata),
            kib(self.data),
            kib(self.bss)
        )
    }
}

/// An Image and what it is made of.
#[derive(Debug)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub sizes: Sizes,
}

/// The loadable segments of `file` that have bytes in the file, by address.
fn loadable_segments<'data>(file: &object::File<'data>) -> Result<Vec<(u64, &'data [u8])>> {
    let mut segments = Vec::new();
    for segment in file.segments() {
        let data = segment.data().context("reading a segment")?;
        if !data.is_empty() {
            segments.push((segment.address(), data));
        }
    }
    ensure!(!segments.is_empty(), "the ELF has no loadable data");
    Ok(segments)
}

/// The largest flat binary `lay_out` makes: a stray segment far from the
/// others would otherwise make a file of gigabytes.
const MAX_FLAT_SIZE: u64 = 256 << 20;

/// Places `segments` (address, bytes) in one buffer that starts at `base`,
/// zero-filling the gaps. Every segment must lie at or above `base`, and the
/// lowest one must start there.
fn lay_out(segments: &[(u64, &[u8])], base: u64) -> Result<Vec<u8>> {
    let lowest = segments
        .iter()
        .map(|(address, _)| *address)
        .min()
        .unwrap_or(base);
    ensure!(
        lowest == base,
        "the image is linked at {lowest:#x}; its linker script links it at {base:#x}"
    );
    let end = segments
        .iter()
        .map(|(address, data)| address + data.len() as u64)
        .max()
        .unwrap_or(base);
    ensure!(
        end - base <= MAX_FLAT_SIZE,
        "the segments span {:#x} bytes from {base:#x}: more than {MAX_FLAT_SIZE:#x}",
        end - base
    );
    let mut bytes = vec![0u8; usize::try_from(end - base)?];
    for (address, data) in segments {
        let start = usize::try_from(address - base)?;
        bytes[start..start + data.len()].copy_from_slice(data);
    }
    Ok(bytes)
}

/// Lays the loadable segments of `elf` out as a flat binary and checks it.
pub fn from_elf(elf: &[u8]) -> Result<Image> {
    let file = object::File::parse(elf).context("not an ELF file")?;
    let bytes = lay_out(&loadable_segments(&file)?, 0)?;

    let mut sizes = Sizes {
        file: bytes.len() as u64,
        ..Sizes::default()
    };
    let mut loaded_end = 0;
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        let size = section.size();
        if section.address() != 0 || name == ".text" {
            loaded_end = loaded_end.max(section.address() + size);
        }
        match name {
            ".text" => sizes.text += size,
            ".rodata" | ".rela.dyn" | ".data.rel.ro" | ".got" | ".dynamic" | ".dynsym"
            | ".dynstr" | ".gnu.hash" | ".hash" => sizes.rodata += size,
            ".data" => sizes.data += size,
            ".bss" | ".stacks" => sizes.bss += size,
            _ => {}
        }
        if name == ".rela.dyn" {
            check_relocations(section.data()?)?;
        }
    }
    check_header(&bytes, loaded_end)?;
    Ok(Image { bytes, sizes })
}

/// A raw binary of `elf` for a loader that copies a file to `base` and
/// jumps to its first byte (Tessera's raw partition images): the loadable
/// segments laid out from `base`, which must be the lowest segment's address
/// and the entry point. Its dynamic relocations must all be
/// `R_AARCH64_RELATIVE`, which such an image applies itself.
pub fn flat_binary(elf: &[u8], base: u64) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).context("not an ELF file")?;
    ensure!(
        file.entry() == base,
        "the entry point is {:#x}, not the first byte of the image at {base:#x}",
        file.entry()
    );
    if let Some(rela) = file.section_by_name(".rela.dyn") {
        check_relocations(rela.data()?)?;
    }
    lay_out(&loadable_segments(&file)?, base)
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    bytes
        .get(offset..offset + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

/// The header must be at offset 0 (else QEMU loads the file as a raw
/// binary) and `image_size` must cover everything up to the end of BSS (else
/// the loader may put the DTB or an initrd where BSS will be cleared).
pub fn check_header(image: &[u8], loaded_end: u64) -> Result<()> {
    ensure!(
        image.get(HEADER_MAGIC..HEADER_MAGIC + 4) == Some(IMAGE_MAGIC.as_slice()),
        "no arm64 Image magic at offset {HEADER_MAGIC:#x}: the header is not at offset 0 (see link.ld)"
    );
    ensure!(
        read_u64(image, HEADER_TEXT_OFFSET) == 0,
        "text_offset must be 0"
    );
    let image_size = read_u64(image, HEADER_IMAGE_SIZE);
    ensure!(
        image_size >= loaded_end && image_size >= image.len() as u64,
        "image_size {image_size:#x} is smaller than the loaded image ({loaded_end:#x} bytes with BSS)"
    );
    ensure!(
        read_u64(image, HEADER_FLAGS) & FLAG_ANYWHERE != 0,
        "flags bit 3 (placement anywhere) must be set"
    );
    Ok(())
}

/// Every dynamic relocation must be one the boot code applies.
pub fn check_relocations(rela: &[u8]) -> Result<()> {
    ensure!(
        rela.len().is_multiple_of(RELA_SIZE),
        ".rela.dyn is not a whole number of entries"
    );
    for (index, entry) in rela.chunks_exact(RELA_SIZE).enumerate() {
        let kind = read_u64(entry, 8) & 0xffff_ffff;
        if kind != R_AARCH64_RELATIVE {
            bail!(
                "relocation {index} has type {kind}, but the boot code applies only R_AARCH64_RELATIVE ({R_AARCH64_RELATIVE})"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(image_size: u64, flags: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x100];
        bytes[HEADER_IMAGE_SIZE..HEADER_IMAGE_SIZE + 8].copy_from_slice(&image_size.to_le_bytes());
        bytes[HEADER_FLAGS..HEADER_FLAGS + 8].copy_from_slice(&flags.to_le_bytes());
        bytes[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(IMAGE_MAGIC);
        bytes
    }

    #[test]
    fn a_true_header_passes() {
        check_header(&header(0x4000, 0xa), 0x4000).unwrap();
    }

    #[test]
    fn image_size_must_include_bss() {
        let error = check_header(&header(0x100, 0xa), 0x4000)
            .unwrap_err()
            .to_string();
        assert!(error.contains("image_size 0x100 is smaller"), "{error}");
    }

    #[test]
    fn header_must_be_at_offset_zero() {
        let mut bytes = header(0x4000, 0xa);
        bytes.insert(0, 0);
        assert!(
            check_header(&bytes, 0x4000)
                .unwrap_err()
                .to_string()
                .contains("no arm64 Image magic")
        );
    }

    #[test]
    fn placement_anywhere_is_required() {
        assert!(check_header(&header(0x4000, 0x2), 0x4000).is_err());
    }

    #[test]
    fn segments_are_laid_out_from_the_base_with_zeroed_gaps() {
        let text: &[u8] = &[1, 2, 3, 4];
        let data: &[u8] = &[9, 9];
        let bytes = lay_out(&[(0x4000_0010, data), (0x4000_0000, text)], 0x4000_0000).unwrap();
        assert_eq!(
            bytes,
            [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9],
            "text at offset 0, data at offset 0x10, zeros between"
        );
    }

    #[test]
    fn the_lowest_segment_must_be_at_the_base() {
        let text: &[u8] = &[1, 2, 3, 4];
        let error = lay_out(&[(0x4008_0000, text)], 0x4000_0000)
            .unwrap_err()
            .to_string();
        assert!(error.contains("linked at 0x40080000"), "{error}");
        assert!(lay_out(&[(0x3fff_f000, text)], 0x4000_0000).is_err());
    }

    #[test]
    fn a_stray_segment_far_away_is_refused() {
        let byte: &[u8] = &[0];
        let error = lay_out(&[(0x4000_0000, byte), (0x8000_0000, byte)], 0x4000_0000)
            .unwrap_err()
            .to_string();
        assert!(error.contains("segments span"), "{error}");
    }

    #[test]
    fn only_relative_relocations_are_accepted() {
        let mut rela = vec![0u8; 2 * RELA_SIZE];
        rela[8..16].copy_from_slice(&R_AARCH64_RELATIVE.to_le_bytes());
        rela[RELA_SIZE + 8..RELA_SIZE + 16].copy_from_slice(&R_AARCH64_RELATIVE.to_le_bytes());
        check_relocations(&rela).unwrap();
        // R_AARCH64_ABS64 (257) would need a symbol table at boot.
        rela[RELA_SIZE + 8..RELA_SIZE + 16].copy_from_slice(&257u64.to_le_bytes());
        assert!(
            check_relocations(&rela)
                .unwrap_err()
                .to_string()
                .contains("relocation 1 has type 257")
        );
    }
}
