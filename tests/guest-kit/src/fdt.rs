//! A tiny, checked reader of flattened device trees (DTSpec v0.4, chapter 5).
//!
//! It answers the few questions a test guest asks: where its RAM is
//! (`/memory` `reg`), its command line (`/chosen/bootargs`) and how often its
//! partition has started (`/chosen/tessera,boot-count`). Every offset is
//! bounds-checked: a malformed blob gives an [`FdtError`], never a panic or
//! an out-of-bounds read.

use core::fmt;

/// `FDT_MAGIC` (DTSpec §5.2).
const FDT_MAGIC: u32 = 0xd00d_feed;
/// Bytes of the header (`struct fdt_header`, DTSpec §5.2), version 17.
const HEADER_SIZE: usize = 40;
/// Header fields (byte offsets).
const HEADER_TOTALSIZE: usize = 4;
const HEADER_OFF_DT_STRUCT: usize = 8;
const HEADER_OFF_DT_STRINGS: usize = 12;
const HEADER_VERSION: usize = 20;
const HEADER_LAST_COMP_VERSION: usize = 24;
const HEADER_SIZE_DT_STRINGS: usize = 32;
const HEADER_SIZE_DT_STRUCT: usize = 36;
/// The versions this reader understands: 17, and anything compatible with 16.
const SUPPORTED_VERSION: u32 = 16;
/// Structure block tokens (DTSpec §5.4.1).
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// The largest blob [`Fdt::from_address`] accepts: the arm64 boot protocol's
/// limit (Linux `Documentation/arch/arm64/booting.rst`), and the size of the
/// window Tessera gives the guest DTB.
pub const MAX_SIZE: usize = 2 * 1024 * 1024;

/// What is wrong with a blob, and where (byte offsets from its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtError {
    /// The address is 0 or not 8-byte aligned (the boot protocol's rule).
    BadAddress(usize),
    /// The first word is not `0xd00dfeed`.
    BadMagic(u32),
    /// `totalsize` is smaller than the header or larger than the limit.
    BadSize(usize),
    /// A version this reader does not understand (`last_comp_version`).
    UnsupportedVersion(u32),
    /// The structure or strings block lies outside the blob.
    BlockOutOfBounds { offset: usize, size: usize },
    /// Something runs past the end of the structure block.
    Truncated { offset: usize },
    /// An unknown token in the structure block.
    BadToken { offset: usize, token: u32 },
    /// A node or property name without its terminating NUL, or not UTF-8.
    BadName { offset: usize },
    /// `END_NODE` without a node to end, or the root not first.
    BadNesting { offset: usize },
    /// A property has the wrong size for its type.
    BadProperty { name: &'static str, size: usize },
    /// `#address-cells` or `#size-cells` other than 1 or 2.
    UnsupportedCells { address: u32, size: u32 },
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FdtError::BadAddress(address) => {
                write!(
                    f,
                    "no device tree at {address:#x} (0 or not 8-byte aligned)"
                )
            }
            FdtError::BadMagic(magic) => {
                write!(f, "bad magic {magic:#010x} (expected {FDT_MAGIC:#010x})")
            }
            FdtError::BadSize(size) => write!(
                f,
                "totalsize {size:#x} is not between {HEADER_SIZE} and {MAX_SIZE:#x} bytes"
            ),
            FdtError::UnsupportedVersion(version) => {
                write!(
                    f,
                    "last compatible version {version} is not {SUPPORTED_VERSION} or older"
                )
            }
            FdtError::BlockOutOfBounds { offset, size } => write!(
                f,
                "a block at offset {offset:#x} of {size:#x} bytes lies outside the blob"
            ),
            FdtError::Truncated { offset } => {
                write!(f, "structure block truncated at offset {offset:#x}")
            }
            FdtError::BadToken { offset, token } => {
                write!(f, "unknown token {token:#x} at offset {offset:#x}")
            }
            FdtError::BadName { offset } => {
                write!(f, "unterminated or non-UTF-8 name at offset {offset:#x}")
            }
            FdtError::BadNesting { offset } => {
                write!(f, "unbalanced nodes at offset {offset:#x}")
            }
            FdtError::BadProperty { name, size } => {
                write!(f, "property {name} has an unexpected size of {size} bytes")
            }
            FdtError::UnsupportedCells { address, size } => write!(
                f,
                "#address-cells = {address}, #size-cells = {size}: only 1 or 2 are supported"
            ),
        }
    }
}

/// A range of guest physical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    /// The first address after the region (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    pub fn contains(&self, address: u64) -> bool {
        address >= self.base && address < self.end()
    }
}

/// A checked view of a flattened device tree.
#[derive(Debug, Clone, Copy)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    /// Offset and size of the structure block within `blob`.
    structure: (usize, usize),
    /// The strings block.
    strings: &'a [u8],
}

/// One token of the structure block.
enum Token<'a> {
    BeginNode(&'a str),
    EndNode,
    Property { name_offset: u32, value: &'a [u8] },
    End,
}

fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

fn align4(offset: usize) -> Option<usize> {
    Some(offset.checked_add(3)? & !3)
}

/// The NUL-terminated string at `offset` of `bytes`, without the NUL.
fn c_str(bytes: &[u8], offset: usize) -> Option<&str> {
    let rest = bytes.get(offset..)?;
    let length = rest.iter().position(|&byte| byte == 0)?;
    core::str::from_utf8(&rest[..length]).ok()
}

/// Whether a node called `name` is what the path component `component`
/// means: the same name, or the component without a unit address
/// (`memory` for `memory@40000000`).
fn name_matches(name: &str, component: &str) -> bool {
    name == component
        || (!component.contains('@')
            && name
                .strip_prefix(component)
                .is_some_and(|rest| rest.starts_with('@')))
}

impl<'a> Fdt<'a> {
    /// Checks the header of `blob` (which may be longer than `totalsize`).
    pub fn new(blob: &'a [u8]) -> Result<Fdt<'a>, FdtError> {
        let header = |offset| be32(blob, offset).ok_or(FdtError::BadSize(blob.len()));
        let magic = header(0)?;
        if magic != FDT_MAGIC {
            return Err(FdtError::BadMagic(magic));
        }
        let total = usize::try_from(header(HEADER_TOTALSIZE)?).unwrap_or(usize::MAX);
        if !(HEADER_SIZE..=MAX_SIZE).contains(&total) || total > blob.len() {
            return Err(FdtError::BadSize(total));
        }
        let blob = &blob[..total];
        let version = header(HEADER_VERSION)?;
        let last_compatible = header(HEADER_LAST_COMP_VERSION)?;
        if last_compatible > SUPPORTED_VERSION || version < SUPPORTED_VERSION {
            return Err(FdtError::UnsupportedVersion(last_compatible.max(version)));
        }
        let block = |offset_field, size_field| -> Result<(usize, usize), FdtError> {
            let offset = usize::try_from(header(offset_field)?).unwrap_or(usize::MAX);
            let size = usize::try_from(header(size_field)?).unwrap_or(usize::MAX);
            match offset.checked_add(size) {
                Some(end) if end <= total => Ok((offset, size)),
                _ => Err(FdtError::BlockOutOfBounds { offset, size }),
            }
        };
        let structure = block(HEADER_OFF_DT_STRUCT, HEADER_SIZE_DT_STRUCT)?;
        if structure.0 % 4 != 0 {
            return Err(FdtError::BlockOutOfBounds {
                offset: structure.0,
                size: structure.1,
            });
        }
        let (strings_offset, strings_size) = block(HEADER_OFF_DT_STRINGS, HEADER_SIZE_DT_STRINGS)?;
        Ok(Fdt {
            blob,
            structure,
            strings: &blob[strings_offset..strings_offset + strings_size],
        })
    }

    /// The blob at `address`, as the boot protocol passes it in x0.
    ///
    /// # Safety
    ///
    /// If `address` is not 0 and is 8-byte aligned, the memory from it must
    /// be readable (at least the 8 bytes of magic and size, and then
    /// `totalsize` bytes if the magic is right) and must not be written while
    /// the returned value lives.
    pub unsafe fn from_address(address: usize) -> Result<Fdt<'static>, FdtError> {
        if address == 0 || !address.is_multiple_of(8) {
            return Err(FdtError::BadAddress(address));
        }
        // SAFETY: the caller promises the first 8 bytes are readable.
        let start: &[u8] = unsafe { core::slice::from_raw_parts(address as *const u8, 8) };
        let magic = be32(start, 0).unwrap_or(0);
        if magic != FDT_MAGIC {
            return Err(FdtError::BadMagic(magic));
        }
        let total = usize::try_from(be32(start, HEADER_TOTALSIZE).unwrap_or(0)).unwrap_or(0);
        if !(HEADER_SIZE..=MAX_SIZE).contains(&total) {
            return Err(FdtError::BadSize(total));
        }
        // SAFETY: the magic is right, so the caller promises `totalsize`
        // readable bytes that stay unchanged for 'static.
        let blob: &'static [u8] =
            unsafe { core::slice::from_raw_parts(address as *const u8, total) };
        Fdt::new(blob)
    }

    /// The blob's size in bytes (`totalsize`).
    pub fn total_size(&self) -> usize {
        self.blob.len()
    }

    /// Decodes the token at `offset` (an offset into the blob) and returns it
    /// with the offset of the next one.
    fn token(&self, offset: usize) -> Result<(Token<'a>, usize), FdtError> {
        let blob = self.blob;
        let end = self.structure.0 + self.structure.1;
        let structure = &blob[..end];
        let truncated = FdtError::Truncated { offset };
        let mut offset = offset;
        loop {
            let token = be32(structure, offset).ok_or(truncated)?;
            let body = offset + 4;
            return match token {
                FDT_NOP => {
                    offset = body;
                    continue;
                }
                FDT_BEGIN_NODE => {
                    let name = c_str(structure, body).ok_or(FdtError::BadName { offset: body })?;
                    let next = align4(body + name.len() + 1).ok_or(truncated)?;
                    Ok((Token::BeginNode(name), next))
                }
                FDT_END_NODE => Ok((Token::EndNode, body)),
                FDT_PROP => {
                    let length = be32(structure, body).ok_or(truncated)?;
                    let name_offset = be32(structure, body + 4).ok_or(truncated)?;
                    let start = body + 8;
                    let value_end = usize::try_from(length)
                        .ok()
                        .and_then(|length| start.checked_add(length))
                        .ok_or(truncated)?;
                    let value = structure.get(start..value_end).ok_or(truncated)?;
                    let next = align4(value_end).ok_or(truncated)?;
                    Ok((Token::Property { name_offset, value }, next))
                }
                FDT_END => Ok((Token::End, body)),
                token => Err(FdtError::BadToken { offset, token }),
            };
        }
    }

    /// The offset just after the `BEGIN_NODE` token of the node at `path`
    /// (absolute, `/` separated; components may omit the unit address).
    fn find_node(&self, path: &str) -> Result<Option<usize>, FdtError> {
        let mut components = path.split('/').filter(|component| !component.is_empty());
        let count = components.clone().count();
        // Depth of the current node (the root is 1) and how many path
        // components the chain of open nodes matches.
        let (mut depth, mut matched) = (0usize, 0usize);
        let mut wanted = components.next();
        let mut offset = self.structure.0;
        loop {
            let here = offset;
            let (token, next) = self.token(offset)?;
            offset = next;
            match token {
                Token::BeginNode(name) => {
                    depth += 1;
                    if depth == 1 {
                        if !name.is_empty() || here != self.structure.0 {
                            return Err(FdtError::BadNesting { offset: here });
                        }
                        if count == 0 {
                            return Ok(Some(offset));
                        }
                    } else if depth == matched + 2
                        && wanted.is_some_and(|component| name_matches(name, component))
                    {
                        matched += 1;
                        if matched == count {
                            return Ok(Some(offset));
                        }
                        wanted = components.next();
                    }
                }
                Token::EndNode => {
                    if depth == 0 {
                        return Err(FdtError::BadNesting { offset: here });
                    }
                    if depth == matched + 1 && matched > 0 {
                        // Leaving a matched node without finding the rest
                        // of the path below it: node names are unique, so
                        // the path does not exist.
                        return Ok(None);
                    }
                    depth -= 1;
                    if depth == 0 {
                        return Ok(None);
                    }
                }
                Token::Property { .. } => {}
                Token::End => return Ok(None),
            }
        }
    }

    /// The value of property `name` of the node at `path`.
    pub fn property(&self, path: &str, name: &str) -> Result<Option<&'a [u8]>, FdtError> {
        let Some(mut offset) = self.find_node(path)? else {
            return Ok(None);
        };
        // Properties precede subnodes (DTSpec §5.4.2).
        loop {
            let (token, next) = self.token(offset)?;
            match token {
                Token::Property { name_offset, value } => {
                    let name_offset = usize::try_from(name_offset).unwrap_or(usize::MAX);
                    let property_name =
                        c_str(self.strings, name_offset).ok_or(FdtError::BadName { offset })?;
                    if property_name == name {
                        return Ok(Some(value));
                    }
                }
                Token::BeginNode(_) | Token::EndNode | Token::End => return Ok(None),
            }
            offset = next;
        }
    }

    /// A property holding one u32.
    fn u32_property(&self, path: &str, name: &'static str) -> Result<Option<u32>, FdtError> {
        match self.property(path, name)? {
            None => Ok(None),
            Some(value) => {
                be32(value, 0)
                    .filter(|_| value.len() == 4)
                    .map(Some)
                    .ok_or(FdtError::BadProperty {
                        name,
                        size: value.len(),
                    })
            }
        }
    }

    /// A property holding a string (NUL-terminated in the blob).
    fn string_property(&self, path: &str, name: &'static str) -> Result<Option<&'a str>, FdtError> {
        match self.property(path, name)? {
            None => Ok(None),
            Some(value) => match value.split_last() {
                Some((0, text)) => {
                    core::str::from_utf8(text)
                        .map(Some)
                        .map_err(|_| FdtError::BadProperty {
                            name,
                            size: value.len(),
                        })
                }
                _ => Err(FdtError::BadProperty {
                    name,
                    size: value.len(),
                }),
            },
        }
    }

    /// The first range of `/memory` `reg`, in the root's cell sizes
    /// (`#address-cells` and `#size-cells`, 2 each when absent from the root
    /// as Tessera and QEMU write them; 1 is accepted too).
    pub fn memory(&self) -> Result<Option<Region>, FdtError> {
        self.root_reg("/memory", 0)
    }

    /// Range `index` of the `reg` of the node at `path`, a child of the
    /// root (so in the root's `#address-cells` and `#size-cells`, as
    /// [`Fdt::memory`] reads them). `None` when the node, its `reg` or that
    /// many ranges are absent; an error when `reg` is not a whole number of
    /// ranges.
    pub fn root_reg(&self, path: &str, index: usize) -> Result<Option<Region>, FdtError> {
        let address_cells = self.u32_property("/", "#address-cells")?.unwrap_or(2);
        let size_cells = self.u32_property("/", "#size-cells")?.unwrap_or(2);
        if !(1..=2).contains(&address_cells) || !(1..=2).contains(&size_cells) {
            return Err(FdtError::UnsupportedCells {
                address: address_cells,
                size: size_cells,
            });
        }
        let Some(reg) = self.property(path, "reg")? else {
            return Ok(None);
        };
        let cells = |offset: usize, count: u32| -> Option<u64> {
            let high = be32(reg, offset)?;
            if count == 1 {
                return Some(u64::from(high));
            }
            Some(u64::from(high) << 32 | u64::from(be32(reg, offset + 4)?))
        };
        let address_bytes = 4 * usize::try_from(address_cells).unwrap_or(2);
        let entry_bytes = address_bytes + 4 * usize::try_from(size_cells).unwrap_or(2);
        let bad = FdtError::BadProperty {
            name: "reg",
            size: reg.len(),
        };
        if reg.is_empty() || !reg.len().is_multiple_of(entry_bytes) {
            return Err(bad);
        }
        let Some(start) = index
            .checked_mul(entry_bytes)
            .filter(|&start| start < reg.len())
        else {
            return Ok(None);
        };
        let base = cells(start, address_cells).ok_or(bad)?;
        let size = cells(start + address_bytes, size_cells).ok_or(bad)?;
        Ok(Some(Region { base, size }))
    }

    /// Calls `visit` with the name of each direct subnode of the node at
    /// `path`, in order. Returns whether that node exists.
    pub fn for_each_child(
        &self,
        path: &str,
        mut visit: impl FnMut(&'a str),
    ) -> Result<bool, FdtError> {
        let Some(mut offset) = self.find_node(path)? else {
            return Ok(false);
        };
        // Depth below the node at `path`: its children are at 0.
        let mut depth = 0usize;
        loop {
            let here = offset;
            let (token, next) = self.token(offset)?;
            offset = next;
            match token {
                Token::BeginNode(name) => {
                    if depth == 0 {
                        visit(name);
                    }
                    depth += 1;
                }
                Token::EndNode => {
                    if depth == 0 {
                        return Ok(true);
                    }
                    depth -= 1;
                }
                Token::Property { .. } => {}
                Token::End => return Err(FdtError::BadNesting { offset: here }),
            }
        }
    }

    /// Whether the `compatible` string list of the node at `path` holds
    /// `compatible` (DTSpec §2.3.1).
    pub fn is_compatible(&self, path: &str, compatible: &str) -> Result<bool, FdtError> {
        let Some(list) = self.property(path, "compatible")? else {
            return Ok(false);
        };
        Ok(list
            .split(|&byte| byte == 0)
            .any(|entry| entry == compatible.as_bytes()))
    }

    /// How many CPUs `/cpus` lists (its `cpu@<n>` subnodes): a partition's
    /// vCPUs, as Tessera writes them.
    pub fn cpu_count(&self) -> Result<usize, FdtError> {
        let mut count = 0;
        self.for_each_child("/cpus", |name| {
            if name == "cpu" || name.starts_with("cpu@") {
                count += 1;
            }
        })?;
        Ok(count)
    }

    /// `/chosen/bootargs`.
    pub fn bootargs(&self) -> Result<Option<&'a str>, FdtError> {
        self.string_property("/chosen", "bootargs")
    }

    /// `/chosen/tessera,boot-count`: 1 on a partition's first start, one more
    /// at every restart.
    pub fn boot_count(&self) -> Result<Option<u32>, FdtError> {
        self.u32_property("/chosen", "tessera,boot-count")
    }
}

/// Host-side construction of blobs for the tests of this crate.
#[cfg(test)]
pub(crate) mod builder {
    /// Writes a flattened device tree, one token at a time.
    #[derive(Default)]
    pub struct Builder {
        structure: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn word(&mut self, word: u32) {
            self.structure.extend_from_slice(&word.to_be_bytes());
        }

        fn pad(&mut self) {
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
        }

        pub fn begin(&mut self, name: &str) -> &mut Self {
            self.word(super::FDT_BEGIN_NODE);
            self.structure.extend_from_slice(name.as_bytes());
            self.structure.push(0);
            self.pad();
            self
        }

        pub fn end(&mut self) -> &mut Self {
            self.word(super::FDT_END_NODE);
            self
        }

        pub fn nop(&mut self) -> &mut Self {
            self.word(super::FDT_NOP);
            self
        }

        pub fn property(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let name_offset = u32::try_from(self.strings.len()).unwrap();
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(super::FDT_PROP);
            self.word(u32::try_from(value.len()).unwrap());
            self.word(name_offset);
            self.structure.extend_from_slice(value);
            self.pad();
            self
        }

        pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
            let mut bytes = value.as_bytes().to_vec();
            bytes.push(0);
            self.property(name, &bytes)
        }

        pub fn u32(&mut self, name: &str, value: u32) -> &mut Self {
            self.property(name, &value.to_be_bytes())
        }

        pub fn finish(&mut self) -> Vec<u8> {
            self.word(super::FDT_END);
            let header = 40 + 16; // the header and an empty reservation map
            let off_struct = header;
            let off_strings = off_struct + self.structure.len();
            let total = off_strings + self.strings.len();
            let mut blob = Vec::with_capacity(total);
            for word in [
                super::FDT_MAGIC,
                u32::try_from(total).unwrap(),
                u32::try_from(off_struct).unwrap(),
                u32::try_from(off_strings).unwrap(),
                40, // off_mem_rsvmap
                17, // version
                16, // last_comp_version
                0,  // boot_cpuid_phys
                u32::try_from(self.strings.len()).unwrap(),
                u32::try_from(self.structure.len()).unwrap(),
            ] {
                blob.extend_from_slice(&word.to_be_bytes());
            }
            blob.extend_from_slice(&[0; 16]);
            blob.extend_from_slice(&self.structure);
            blob.extend_from_slice(&self.strings);
            blob
        }
    }

    /// A guest DTB as Tessera writes it.
    pub fn guest_dtb(bootargs: &str, boot_count: Option<u32>) -> Vec<u8> {
        let mut builder = Builder::default();
        builder
            .begin("")
            .u32("#address-cells", 2)
            .u32("#size-cells", 2)
            .string("compatible", "linux,dummy-virt")
            .begin("cpus")
            .u32("#address-cells", 1)
            .u32("#size-cells", 0)
            .begin("cpu@0")
            .u32("reg", 0)
            .end()
            .end()
            .begin("memory@40000000")
            .string("device_type", "memory")
            .property(
                "reg",
                &[0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0],
            )
            .end()
            .begin("chosen")
            .string("bootargs", bootargs);
        if let Some(count) = boot_count {
            builder.u32("tessera,boot-count", count);
        }
        builder.end().end().finish()
    }
}

#[cfg(test)]
mod tests {
    use super::builder::{Builder, guest_dtb};
    use super::*;

    #[test]
    fn reads_memory_bootargs_and_boot_count() {
        let blob = guest_dtb("console=ttyAMA0 role=a", Some(3));
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(
            fdt.memory().unwrap(),
            Some(Region {
                base: 0x4000_0000,
                size: 0x0400_0000
            })
        );
        assert_eq!(fdt.bootargs().unwrap(), Some("console=ttyAMA0 role=a"));
        assert_eq!(fdt.boot_count().unwrap(), Some(3));
        assert_eq!(fdt.total_size(), blob.len());
    }

    #[test]
    fn cpus_are_counted_by_node_name() {
        let blob = Builder::default()
            .begin("")
            .begin("cpus")
            .u32("#address-cells", 1)
            .begin("cpu@0")
            .begin("l1-cache")
            .end()
            .end()
            .begin("cpu-map")
            .end()
            .begin("cpu@1")
            .end()
            .end()
            .end()
            .finish();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.cpu_count(), Ok(2), "cpu-map and caches are no CPUs");
        let none = guest_dtb("", None);
        assert_eq!(Fdt::new(&none).unwrap().cpu_count(), Ok(1));
    }

    #[test]
    fn absent_properties_and_nodes_are_none() {
        let blob = guest_dtb("role=b", None);
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.boot_count().unwrap(), None);
        assert_eq!(fdt.property("/chosen", "stdout-path").unwrap(), None);
        assert_eq!(fdt.property("/psci", "method").unwrap(), None);
        assert_eq!(fdt.property("/cpus/cpu@1", "reg").unwrap(), None);
    }

    #[test]
    fn properties_of_a_subnode_are_not_its_parents() {
        // `reg` of /cpus/cpu@0 must not be found as a property of /cpus.
        let blob = guest_dtb("", None);
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.property("/cpus", "reg").unwrap(), None);
        assert_eq!(
            fdt.property("/cpus/cpu@0", "reg").unwrap(),
            Some([0u8, 0, 0, 0].as_slice())
        );
    }

    #[test]
    fn a_node_name_needs_its_unit_address_only_when_asked() {
        assert!(name_matches("memory@40000000", "memory"));
        assert!(name_matches("memory", "memory"));
        assert!(name_matches("memory@40000000", "memory@40000000"));
        assert!(!name_matches("memory@40000000", "memory@50000000"));
        assert!(!name_matches("memoryx", "memory"));
    }

    #[test]
    fn nop_tokens_are_skipped() {
        let blob = Builder::default()
            .begin("")
            .nop()
            .begin("chosen")
            .nop()
            .string("bootargs", "role=hello")
            .end()
            .end()
            .finish();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.bootargs().unwrap(), Some("role=hello"));
    }

    #[test]
    fn one_cell_addresses_are_read() {
        let blob = Builder::default()
            .begin("")
            .u32("#address-cells", 1)
            .u32("#size-cells", 1)
            .begin("memory")
            .property("reg", &[0x40, 0, 0, 0, 0, 0x10, 0, 0])
            .end()
            .end()
            .finish();
        let memory = Fdt::new(&blob).unwrap().memory().unwrap();
        assert_eq!(
            memory,
            Some(Region {
                base: 0x4000_0000,
                size: 0x0010_0000
            })
        );
    }

    #[test]
    fn wrongly_sized_properties_are_errors() {
        let blob = Builder::default()
            .begin("")
            .begin("chosen")
            .property("tessera,boot-count", &[0, 1])
            .property("bootargs", b"no terminator")
            .end()
            .begin("memory")
            .property("reg", &[0; 12])
            .end()
            .end()
            .finish();
        let fdt = Fdt::new(&blob).unwrap();
        assert!(matches!(
            fdt.boot_count(),
            Err(FdtError::BadProperty { size: 2, .. })
        ));
        assert!(matches!(fdt.bootargs(), Err(FdtError::BadProperty { .. })));
        assert!(matches!(fdt.memory(), Err(FdtError::BadProperty { .. })));
    }

    #[test]
    fn bad_headers_are_rejected() {
        let good = guest_dtb("role=a", Some(1));
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        assert!(matches!(Fdt::new(&bad_magic), Err(FdtError::BadMagic(_))));
        assert!(matches!(
            Fdt::new(&good[..good.len() - 1]),
            Err(FdtError::BadSize(_))
        ));
        assert!(Fdt::new(&good[..3]).is_err());
        let mut future = good.clone();
        future[HEADER_LAST_COMP_VERSION + 3] = 18;
        assert!(matches!(
            Fdt::new(&future),
            Err(FdtError::UnsupportedVersion(18))
        ));
        let mut strings_outside = good.clone();
        strings_outside[HEADER_SIZE_DT_STRINGS..HEADER_SIZE_DT_STRINGS + 4]
            .copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(
            Fdt::new(&strings_outside),
            Err(FdtError::BlockOutOfBounds { .. })
        ));
    }

    #[test]
    fn unbalanced_and_unknown_tokens_are_errors() {
        let extra_end = Builder::default().begin("").end().end().finish();
        assert!(matches!(
            Fdt::new(&extra_end).unwrap().bootargs(),
            Ok(None) | Err(FdtError::BadNesting { .. })
        ));
        let mut unknown = guest_dtb("role=a", None);
        // The first token of the structure block (the root's BEGIN_NODE).
        let structure = usize::try_from(be32(&unknown, HEADER_OFF_DT_STRUCT).unwrap()).unwrap();
        unknown[structure + 3] = 0x7;
        assert!(matches!(
            Fdt::new(&unknown).unwrap().bootargs(),
            Err(FdtError::BadToken { token: 7, .. })
        ));
    }

    #[test]
    fn a_blob_without_end_token_is_truncated_not_a_panic() {
        let mut blob = Builder::default()
            .begin("")
            .begin("chosen")
            .string("bootargs", "x")
            .finish();
        // Drop the END token by shrinking the structure block.
        let size = be32(&blob, HEADER_SIZE_DT_STRUCT).unwrap() - 4;
        blob[HEADER_SIZE_DT_STRUCT..HEADER_SIZE_DT_STRUCT + 4].copy_from_slice(&size.to_be_bytes());
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.bootargs().unwrap(), Some("x"));
        assert!(matches!(fdt.boot_count(), Err(FdtError::Truncated { .. })));
    }

    #[test]
    fn every_truncation_and_corruption_is_handled_without_panicking() {
        // Flip each byte and cut the blob at each length: the reader must
        // answer or fail, never panic or loop.
        let good = guest_dtb("console=ttyAMA0 role=a", Some(2));
        for index in 0..good.len() {
            for value in [0x00, 0x01, 0x03, 0x09, 0xff] {
                let mut blob = good.clone();
                blob[index] = value;
                if let Ok(fdt) = Fdt::new(&blob) {
                    let _ = fdt.memory();
                    let _ = fdt.bootargs();
                    let _ = fdt.boot_count();
                }
            }
            let _ = Fdt::new(&good[..index]);
        }
    }

    #[test]
    fn from_address_rejects_null_and_misaligned_addresses() {
        // SAFETY: neither address is dereferenced: both fail the first check.
        unsafe {
            assert_eq!(Fdt::from_address(0).unwrap_err(), FdtError::BadAddress(0));
            assert_eq!(
                Fdt::from_address(0x4000_0004).unwrap_err(),
                FdtError::BadAddress(0x4000_0004)
            );
        }
    }

    #[test]
    fn from_address_reads_a_blob_in_memory() {
        let blob = guest_dtb("role=hello", Some(1));
        // 8-byte aligned copy.
        let mut words = vec![0u64; blob.len().div_ceil(8)];
        // SAFETY: `words` has at least blob.len() bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(
                blob.as_ptr(),
                words.as_mut_ptr().cast::<u8>(),
                blob.len(),
            );
        }
        let words = words.leak();
        // SAFETY: `words` is readable, 8-byte aligned, never written again
        // and leaked, so it lives for 'static.
        let fdt = unsafe { Fdt::from_address(words.as_ptr() as usize) }.unwrap();
        assert_eq!(fdt.bootargs().unwrap(), Some("role=hello"));
    }
}
