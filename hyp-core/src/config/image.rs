//! Kernel images: the arm64 `Image` header (Linux
//! `Documentation/arch/arm64/booting.rst`), or a raw binary.

/// `ARM\x64` at offset 0x38, little-endian.
const ARM64_IMAGE_MAGIC: u32 = 0x644d_5241;
const MAGIC_OFFSET: usize = 0x38;
const TEXT_OFFSET_OFFSET: usize = 8;
const IMAGE_SIZE_OFFSET: usize = 16;
/// Bytes of the header that are read.
pub const HEADER_SIZE: usize = 64;
/// booting.rst: an image_size of 0 means a kernel older than 3.17, whose
/// text_offset is 0x80000.
const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// How a kernel is placed in the guest's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// An arm64 `Image`: loaded `text_offset` bytes above a 2 MiB-aligned
    /// base and given `image_size` bytes (BSS included) from there.
    Arm64Image { text_offset: u64, image_size: u64 },
    /// Anything else: copied to the RAM base and entered at its first byte.
    Raw,
}

impl core::fmt::Display for KernelKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KernelKind::Arm64Image { .. } => f.write_str("arm64 Image"),
            KernelKind::Raw => f.write_str("raw binary"),
        }
    }
}

impl KernelKind {
    /// Reads the header at the start of `bytes` (the first [`HEADER_SIZE`]
    /// bytes of the file are enough); `file_size` is the whole file's size.
    pub fn detect(bytes: &[u8]) -> KernelKind {
        let le32 = |offset: usize| {
            bytes
                .get(offset..offset.checked_add(4)?)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let le64 = |offset: usize| {
            bytes
                .get(offset..offset.checked_add(8)?)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        match (
            le32(MAGIC_OFFSET),
            le64(TEXT_OFFSET_OFFSET),
            le64(IMAGE_SIZE_OFFSET),
        ) {
            (Some(ARM64_IMAGE_MAGIC), Some(_), Some(0)) => KernelKind::Arm64Image {
                text_offset: LEGACY_TEXT_OFFSET,
                image_size: 0,
            },
            (Some(ARM64_IMAGE_MAGIC), Some(text_offset), Some(image_size)) => {
                KernelKind::Arm64Image {
                    text_offset,
                    image_size,
                }
            }
            _ => KernelKind::Raw,
        }
    }

    /// A header field no kernel can have: `text_offset` or `image_size`
    /// beyond [`MAX_PLAUSIBLE`] (no RAM is that large), as (field, value).
    pub fn implausible_field(self) -> Option<(&'static str, u64)> {
        match self {
            KernelKind::Arm64Image { text_offset, .. } if text_offset > MAX_PLAUSIBLE => {
                Some(("text_offset", text_offset))
            }
            KernelKind::Arm64Image { image_size, .. } if image_size > MAX_PLAUSIBLE => {
                Some(("image_size", image_size))
            }
            _ => None,
        }
    }

    /// Offset of the load address from the RAM base.
    pub fn load_offset(self) -> u64 {
        match self {
            KernelKind::Arm64Image { text_offset, .. } => text_offset,
            KernelKind::Raw => 0,
        }
    }

    /// Bytes the kernel occupies from its load address: its `image_size`
    /// (or the file, if larger, or if the header gives none).
    pub fn footprint(self, file_size: u64) -> u64 {
        match self {
            KernelKind::Arm64Image { image_size, .. } => image_size.max(file_size),
            KernelKind::Raw => file_size,
        }
    }
}

/// More than any partition's RAM can be: 2^48 bytes, the largest physical
/// address space (48-bit output addresses).
pub const MAX_PLAUSIBLE: u64 = 1 << 48;

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64) -> [u8; HEADER_SIZE] {
        let mut h = [0u8; HEADER_SIZE];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[0x38..0x3c].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn an_image_header_gives_text_offset_and_size() {
        assert_eq!(
            KernelKind::detect(&header(0x1000, 0x20_0000)),
            KernelKind::Arm64Image {
                text_offset: 0x1000,
                image_size: 0x20_0000
            }
        );
    }

    #[test]
    fn a_legacy_header_without_image_size_uses_0x80000() {
        let kind = KernelKind::detect(&header(0, 0));
        assert_eq!(kind.load_offset(), LEGACY_TEXT_OFFSET);
        assert_eq!(kind.footprint(1234), 1234, "falls back to the file size");
    }

    #[test]
    fn anything_without_the_magic_is_raw() {
        let mut h = header(0x1000, 0x1000);
        h[0x38] = b'X';
        assert_eq!(KernelKind::detect(&h), KernelKind::Raw);
        assert_eq!(
            KernelKind::detect(&h[..10]),
            KernelKind::Raw,
            "short files are raw"
        );
        assert_eq!(KernelKind::Raw.load_offset(), 0);
    }
}
