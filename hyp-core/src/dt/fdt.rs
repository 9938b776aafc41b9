//! A checked reader for flattened device trees (DTB, Devicetree Specification v0.4 §5).
//!
//! The DTB is untrusted input: it comes from firmware, U-Boot or a user's
//! overlay. [`Fdt::new`] validates the whole blob once (header, block bounds,
//! every token, name and string offset, nesting depth) so that a malformed tree
//! is reported with the byte offset of the problem instead of being trusted.
//! Everything after that still reads through `get()` and returns `Option`, so
//! even a bug in validation cannot turn into a panic at EL2.
//!
//! Why not the `fdt` crate: version 0.1.5 panics inside node iteration on
//! malformed structure blocks (`unwrap`/`assert_eq!` in `node.rs`), does not
//! bounds-check the block offsets in its header, and panics on a valid tree that
//! has an `FDT_NOP` between a node's properties and its subnodes (what libfdt's
//! `fdt_nop_property` leaves behind). See `nop_between_properties_and_children`.

#![deny(clippy::indexing_slicing)]

use core::fmt;

use super::bytes::{align4, be32, be64};
use super::node::{Lookup, Node, Nodes};

/// `FDT_MAGIC` (§5.2).
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// The header version this reader understands (§5.2: blobs of `version` 17,
/// or later ones whose `last_comp_version` is at most 17).
const FDT_VERSION: u32 = 17;
/// Size of the version-17 header in bytes.
pub const FDT_HEADER_SIZE: usize = 40;
/// Linux refuses DTBs above 2 MiB (`MAX_FDT_SIZE`); so do we, so that a
/// corrupt `totalsize` cannot make us read (or reserve) half of RAM.
pub const FDT_MAX_SIZE: usize = 2 * 1024 * 1024;
/// Deepest node nesting accepted (the root is depth 0). Real trees stay below
/// 8; the bound keeps [`Node`] a fixed-size value.
pub const MAX_DEPTH: usize = 16;

// Structure block tokens (§5.4.1).
pub(super) const FDT_BEGIN_NODE: u32 = 0x1;
pub(super) const FDT_END_NODE: u32 = 0x2;
pub(super) const FDT_PROP: u32 = 0x3;
pub(super) const FDT_NOP: u32 = 0x4;
pub(super) const FDT_END: u32 = 0x9;
/// Bytes of a token word; a node's name follows its `FDT_BEGIN_NODE` word.
pub(super) const FDT_TOKEN_SIZE: usize = 4;

/// What is wrong with a DTB, with the byte offset where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtError {
    /// The blob is shorter than its header says (or than a header).
    Truncated { needed: usize, available: usize },
    /// The first word is not `FDT_MAGIC`.
    BadMagic { found: u32 },
    /// A header version this reader does not understand.
    UnsupportedVersion { version: u32, last_compatible: u32 },
    /// `totalsize` is larger than [`FDT_MAX_SIZE`].
    TooLarge { total_size: usize },
    /// A block named in the header does not lie inside `totalsize` or is misaligned.
    BadBlock {
        block: &'static str,
        offset: usize,
        size: usize,
    },
    /// An unexpected token in the structure block.
    BadToken { offset: usize, token: u32 },
    /// A node name or string that is not NUL-terminated inside its block.
    Unterminated { offset: usize },
    /// A node or property name that is not valid UTF-8.
    BadName { offset: usize },
    /// A property's name offset points outside the strings block.
    BadStringOffset { offset: usize, name_offset: u32 },
    /// A property value runs past the end of the structure block.
    PropertyOverrun { offset: usize, len: u32 },
    /// A property follows a subnode (§5.4.2 requires properties first).
    PropertyAfterSubnode { offset: usize },
    /// Nodes nested deeper than [`MAX_DEPTH`].
    TooDeep { offset: usize },
    /// The root node is missing, has a name, or is followed by another node.
    BadRoot { offset: usize },
    /// The memory reservation block is not terminated by a zero entry.
    UnterminatedReservations,
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            Self::BadMagic { found } => {
                write!(
                    f,
                    "bad magic {found:#010x} (a DTB starts with {FDT_MAGIC:#010x})"
                )
            }
            Self::UnsupportedVersion {
                version,
                last_compatible,
            } => write!(
                f,
                "unsupported version {version} (last compatible {last_compatible}); \
                 version {FDT_VERSION} is required"
            ),
            Self::TooLarge { total_size } => {
                write!(
                    f,
                    "totalsize {total_size} bytes exceeds the {FDT_MAX_SIZE}-byte limit"
                )
            }
            Self::BadBlock {
                block,
                offset,
                size,
            } => write!(
                f,
                "{block} block at offset {offset:#x} (size {size:#x}) lies outside the blob or is misaligned"
            ),
            Self::BadToken { offset, token } => {
                write!(
                    f,
                    "unexpected token {token:#x} at structure offset {offset:#x}"
                )
            }
            Self::Unterminated { offset } => {
                write!(
                    f,
                    "name at structure offset {offset:#x} is not NUL-terminated"
                )
            }
            Self::BadName { offset } => {
                write!(f, "name at structure offset {offset:#x} is not valid UTF-8")
            }
            Self::BadStringOffset {
                offset,
                name_offset,
            } => write!(
                f,
                "property at structure offset {offset:#x} names string offset {name_offset:#x}, \
                 outside the strings block"
            ),
            Self::PropertyOverrun { offset, len } => write!(
                f,
                "property at structure offset {offset:#x} claims {len} bytes, past the structure block"
            ),
            Self::PropertyAfterSubnode { offset } => {
                write!(
                    f,
                    "property after a subnode at structure offset {offset:#x}"
                )
            }
            Self::TooDeep { offset } => write!(
                f,
                "nodes nested deeper than {MAX_DEPTH} levels at structure offset {offset:#x}"
            ),
            Self::BadRoot { offset } => {
                write!(f, "malformed root node at structure offset {offset:#x}")
            }
            Self::UnterminatedReservations => {
                f.write_str("memory reservation block has no terminating entry")
            }
        }
    }
}

/// Reads the bytes of a NUL-terminated string starting at `offset`, without
/// the NUL. Readers of a validated tree compare names as bytes: validation
/// already checked that every name is UTF-8, and re-checking it on every
/// token of every walk was most of the cost of a lookup.
pub(super) fn bytes_until_nul(bytes: &[u8], offset: usize) -> Result<&[u8], FdtError> {
    let tail = bytes
        .get(offset..)
        .ok_or(FdtError::Unterminated { offset })?;
    let len = tail
        .iter()
        .position(|&b| b == 0)
        .ok_or(FdtError::Unterminated { offset })?;
    tail.get(..len).ok_or(FdtError::Unterminated { offset })
}

/// Reads a NUL-terminated UTF-8 string starting at `offset`.
pub(super) fn cstr_at(bytes: &[u8], offset: usize) -> Result<&str, FdtError> {
    let name = bytes_until_nul(bytes, offset)?;
    core::str::from_utf8(name).map_err(|_| FdtError::BadName { offset })
}

/// One token of the structure block (§5.4.1), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// A node: its name as bytes (validation checks that it is UTF-8).
    BeginNode {
        name: &'a [u8],
    },
    EndNode,
    /// A property: its value's place in the structure block and its name's
    /// offset in the strings block (checked by validation, not here).
    Property {
        value_start: usize,
        len: usize,
        name_offset: u32,
    },
    Nop,
    End,
}

/// Decodes the token at `offset` and returns it with the offset of the next
/// token. Every bound inside the structure block is checked here; the one
/// decoder serves validation and every reader, so they cannot disagree.
///
/// Inlined into each walk: a lookup decodes hundreds of tokens, and passing
/// every decoded token back through memory cost more than decoding it.
#[inline(always)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "offsets past a token that was read: each sum stays within the structure block \
              (a slice, at most isize::MAX bytes), checked where a length from the blob is added"
)]
pub(super) fn token_at(structs: &[u8], offset: usize) -> Result<(Token<'_>, usize), FdtError> {
    let token = be32(structs, offset).ok_or(FdtError::Truncated {
        needed: offset + 4,
        available: structs.len(),
    })?;
    let body = offset + FDT_TOKEN_SIZE;
    match token {
        FDT_BEGIN_NODE => {
            let name = bytes_until_nul(structs, body)?;
            let next =
                align4(body + name.len() + 1).ok_or(FdtError::Unterminated { offset: body })?;
            Ok((Token::BeginNode { name }, next))
        }
        FDT_PROP => {
            let len = be32(structs, body).ok_or(FdtError::PropertyOverrun { offset, len: 0 })?;
            let name_offset =
                be32(structs, body + 4).ok_or(FdtError::PropertyOverrun { offset, len })?;
            let value_start = body + 8;
            let value_end = usize::try_from(len)
                .ok()
                .and_then(|len| value_start.checked_add(len))
                .filter(|&end| end <= structs.len())
                .ok_or(FdtError::PropertyOverrun { offset, len })?;
            let next = align4(value_end).ok_or(FdtError::PropertyOverrun { offset, len })?;
            Ok((
                Token::Property {
                    value_start,
                    len: value_end - value_start,
                    name_offset,
                },
                next,
            ))
        }
        FDT_END_NODE => Ok((Token::EndNode, body)),
        FDT_NOP => Ok((Token::Nop, body)),
        FDT_END => Ok((Token::End, body)),
        _ => Err(FdtError::BadToken { offset, token }),
    }
}

/// A validated device tree blob: the bytes and where its blocks are (kept
/// small, because every [`Node`] carries a copy).
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    structs: Block,
    strings: Block,
    reservations: Block,
    boot_cpuid: u32,
}

/// A block's place in the blob (checked against the blob by [`Fdt::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    offset: u32,
    size: u32,
}

impl Block {
    fn of<'a>(&self, blob: &'a [u8]) -> &'a [u8] {
        let start = self.offset as usize;
        start
            .checked_add(self.size as usize)
            .and_then(|end| blob.get(start..end))
            .unwrap_or(&[])
    }
}

/// The `totalsize` field of a DTB header, read before the whole blob is
/// available (at boot, only the header is known to be readable).
pub fn total_size_from_header(header: &[u8]) -> Result<usize, FdtError> {
    let magic = be32(header, 0).ok_or(FdtError::Truncated {
        needed: FDT_HEADER_SIZE,
        available: header.len(),
    })?;
    if magic != FDT_MAGIC {
        return Err(FdtError::BadMagic { found: magic });
    }
    let total = be32(header, 4).ok_or(FdtError::Truncated {
        needed: FDT_HEADER_SIZE,
        available: header.len(),
    })?;
    let total = usize::try_from(total).map_err(|_| FdtError::TooLarge {
        total_size: usize::MAX,
    })?;
    if total > FDT_MAX_SIZE {
        return Err(FdtError::TooLarge { total_size: total });
    }
    if total < FDT_HEADER_SIZE {
        return Err(FdtError::Truncated {
            needed: FDT_HEADER_SIZE,
            available: total,
        });
    }
    Ok(total)
}

impl<'a> Fdt<'a> {
    /// Validates `blob` and returns a reader for it. `blob` may be longer than
    /// the tree's `totalsize`; the rest is ignored.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        let total = total_size_from_header(blob)?;
        let blob = blob.get(..total).ok_or(FdtError::Truncated {
            needed: total,
            available: blob.len(),
        })?;
        let field = |index: usize| -> Result<usize, FdtError> {
            let value = be32(blob, index.saturating_mul(4)).ok_or(FdtError::Truncated {
                needed: FDT_HEADER_SIZE,
                available: blob.len(),
            })?;
            usize::try_from(value).map_err(|_| FdtError::TooLarge {
                total_size: usize::MAX,
            })
        };
        let (off_struct, off_strings, off_rsvmap) = (field(2)?, field(3)?, field(4)?);
        let version = be32(blob, 20).unwrap_or(0);
        let last_comp = be32(blob, 24).unwrap_or(u32::MAX);
        let boot_cpuid = be32(blob, 28).unwrap_or(0);
        let (size_strings, size_struct) = (field(8)?, field(9)?);
        if version < FDT_VERSION || last_comp > FDT_VERSION {
            return Err(FdtError::UnsupportedVersion {
                version,
                last_compatible: last_comp,
            });
        }
        let block = |name: &'static str, offset: usize, size: usize, align: usize| {
            let bad = FdtError::BadBlock {
                block: name,
                offset,
                size,
            };
            let end = offset.checked_add(size).ok_or(bad)?;
            if offset < FDT_HEADER_SIZE || !offset.is_multiple_of(align) || end > blob.len() {
                return Err(bad);
            }
            // Both fit in u32: the blob is at most FDT_MAX_SIZE bytes.
            Ok(Block {
                offset: u32::try_from(offset).map_err(|_| bad)?,
                size: u32::try_from(size).map_err(|_| bad)?,
            })
        };
        let structs = block("structure", off_struct, size_struct, 4)?;
        let strings = block("strings", off_strings, size_strings, 1)?;
        let reservations = block(
            "memory reservation",
            off_rsvmap,
            total.saturating_sub(off_rsvmap),
            8,
        )?;
        let fdt = Fdt {
            blob,
            structs,
            strings,
            reservations,
            boot_cpuid,
        };
        fdt.validate_structure()?;
        fdt.validate_reservations()?;
        Ok(fdt)
    }

    /// Whether two handles read the same blob.
    pub(super) fn same_blob(&self, other: &Fdt<'_>) -> bool {
        core::ptr::eq(self.blob, other.blob)
    }

    /// The whole blob, `totalsize` bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.blob
    }

    /// `totalsize` from the header.
    pub fn total_size(&self) -> usize {
        self.blob.len()
    }

    /// `boot_cpuid_phys` from the header.
    pub fn boot_cpuid(&self) -> u32 {
        self.boot_cpuid
    }

    pub(super) fn structs(&self) -> &'a [u8] {
        self.structs.of(self.blob)
    }

    pub(super) fn strings(&self) -> &'a [u8] {
        self.strings.of(self.blob)
    }

    /// One pass over the structure block checking every token.
    fn validate_structure(&self) -> Result<(), FdtError> {
        let (structs, strings) = (self.structs(), self.strings());
        let mut offset = 0;
        let mut depth = 0usize;
        let mut seen_root = false;
        // Per depth: whether a subnode has been seen (properties must come first).
        let mut has_child = [false; MAX_DEPTH + 1];
        loop {
            let (token, next) = token_at(structs, offset)?;
            match token {
                Token::Nop => {}
                Token::BeginNode { name } => {
                    core::str::from_utf8(name).map_err(|_| FdtError::BadName {
                        offset: offset.saturating_add(FDT_TOKEN_SIZE),
                    })?;
                    if depth == 0 && (seen_root || !name.is_empty()) {
                        return Err(FdtError::BadRoot { offset });
                    }
                    if depth > 0 {
                        *has_child
                            .get_mut(depth)
                            .ok_or(FdtError::TooDeep { offset })? = true;
                    }
                    depth = depth.saturating_add(1);
                    if depth > MAX_DEPTH {
                        return Err(FdtError::TooDeep { offset });
                    }
                    *has_child
                        .get_mut(depth)
                        .ok_or(FdtError::TooDeep { offset })? = false;
                    seen_root = true;
                }
                Token::Property { name_offset, .. } => {
                    if depth == 0 {
                        return Err(FdtError::BadToken {
                            offset,
                            token: FDT_PROP,
                        });
                    }
                    if has_child.get(depth).copied().unwrap_or(true) {
                        return Err(FdtError::PropertyAfterSubnode { offset });
                    }
                    let name_at = usize::try_from(name_offset)
                        .ok()
                        .filter(|&n| n < strings.len())
                        .ok_or(FdtError::BadStringOffset {
                            offset,
                            name_offset,
                        })?;
                    cstr_at(strings, name_at)?;
                }
                Token::EndNode => {
                    depth = depth.checked_sub(1).ok_or(FdtError::BadToken {
                        offset,
                        token: FDT_END_NODE,
                    })?;
                }
                Token::End => {
                    return if depth == 0 && seen_root {
                        Ok(())
                    } else {
                        Err(FdtError::BadRoot { offset })
                    };
                }
            }
            offset = next;
        }
    }

    fn validate_reservations(&self) -> Result<(), FdtError> {
        let block = self.reservations.of(self.blob);
        let mut offset = 0;
        loop {
            let address = be64(block, offset).ok_or(FdtError::UnterminatedReservations)?;
            let size = offset
                .checked_add(8)
                .and_then(|at| be64(block, at))
                .ok_or(FdtError::UnterminatedReservations)?;
            if address == 0 && size == 0 {
                return Ok(());
            }
            offset = offset
                .checked_add(16)
                .ok_or(FdtError::UnterminatedReservations)?;
        }
    }

    /// The `/memreserve/` entries as (address, size).
    pub fn reservations(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let block = self.reservations.of(self.blob);
        let mut offset = 0usize;
        core::iter::from_fn(move || {
            let entry = (be64(block, offset)?, be64(block, offset.checked_add(8)?)?);
            offset = offset.checked_add(16)?;
            (entry != (0, 0)).then_some(entry)
        })
    }

    /// The root node.
    pub fn root(&self) -> Node<'a> {
        // Validation found the root's FDT_BEGIN_NODE after any leading NOPs.
        let mut offset = 0;
        while be32(self.structs(), offset) == Some(FDT_NOP) {
            // A NOP was read there: the next token's offset fits.
            offset = offset.saturating_add(FDT_TOKEN_SIZE);
        }
        Node::at(*self, offset, 0, [0; MAX_DEPTH])
    }

    /// Every node, depth first, root included.
    pub fn nodes(&self) -> Nodes<'a> {
        Nodes::new(*self)
    }

    /// Finds a node by absolute path (`/soc/serial@7e201000`) or by alias
    /// (`serial0`, `serial0/child`). A path component without a unit address
    /// matches a node whose name has one, as the specification allows.
    pub fn find_node(&self, path: &str) -> Option<Node<'a>> {
        if let Some(absolute) = path.strip_prefix('/') {
            return self.root().find_descendant(absolute);
        }
        let (alias, rest) = path.split_once('/').unwrap_or((path, ""));
        let target = self.root().child("aliases")?.property(alias)?.as_str()?;
        // An alias must name an absolute path; anything else could recurse.
        if !target.starts_with('/') {
            return None;
        }
        let node = self.find_node(target)?;
        if rest.is_empty() {
            Some(node)
        } else {
            node.find_descendant(rest)
        }
    }

    /// The node an absolute `path` names, never a guess between nodes that
    /// share a base name ([`Node::unique_child`]); aliases are not followed.
    pub fn find_unique_node(&self, path: &'a str) -> Result<Node<'a>, Lookup<'a>> {
        match path.strip_prefix('/') {
            Some(absolute) => self.root().find_unique_descendant(absolute),
            None => Err(Lookup::NotFound),
        }
    }

    /// The node whose `phandle` property is `phandle`.
    pub fn find_phandle(&self, phandle: u32) -> Option<Node<'a>> {
        self.nodes()
            .find(|node| node.property("phandle").and_then(|p| p.as_u32()) == Some(phandle))
    }

    pub(super) fn string_at(&self, offset: usize) -> Option<&'a str> {
        cstr_at(self.strings(), offset).ok()
    }

    /// The string at `offset` of the strings block if it is `expected`:
    /// compares the bytes and the NUL after them, without scanning for the
    /// end of every name that does not match.
    pub(super) fn string_if_equal(&self, offset: usize, expected: &str) -> Option<&'a str> {
        let strings = self.strings();
        let end = offset.checked_add(expected.len())?;
        let candidate = strings.get(offset..end)?;
        if candidate != expected.as_bytes() || strings.get(end) != Some(&0) {
            return None;
        }
        // A NUL inside `expected` would span two adjacent strings.
        if candidate.contains(&0) {
            return None;
        }
        core::str::from_utf8(candidate).ok()
    }
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    reason = "test blobs are a few hundred bytes"
)]
mod tests {
    use super::*;
    use crate::dt::test_builder::Builder;

    fn small_tree() -> Vec<u8> {
        Builder::default()
            .begin("")
            .prop_str("model", "test board")
            .prop_cells("#address-cells", &[1])
            .begin("aliases")
            .prop_str("serial0", "/soc/uart@100")
            .end()
            .begin("soc")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[1])
            .prop_cells("ranges", &[0x0, 0x8000_0000, 0x1000])
            .begin("uart@100")
            .prop_cells("reg", &[0x100, 0x20])
            .end()
            .end()
            .end()
            .build()
    }

    #[test]
    fn nop_between_properties_and_children() {
        // libfdt's fdt_nop_property leaves NOPs where a property was; the fdt
        // crate panics on exactly this shape.
        let blob = Builder::default()
            .begin("")
            .nop()
            .prop_str("model", "nop board")
            .nop()
            .nop()
            .begin("child@1")
            .nop()
            .end()
            .nop()
            .begin("child@2")
            .end()
            .end()
            .build();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(
            fdt.root().property("model").unwrap().as_str(),
            Some("nop board")
        );
        let names: Vec<_> = fdt.root().children().map(|c| c.name()).collect();
        assert_eq!(names, ["child@1", "child@2"]);
        assert_eq!(fdt.nodes().count(), 3);
    }

    #[test]
    fn paths_aliases_and_parents() {
        let blob = small_tree();
        let fdt = Fdt::new(&blob).unwrap();
        let uart = fdt.find_node("/soc/uart@100").unwrap();
        assert_eq!(uart.path().to_string(), "/soc/uart@100");
        assert_eq!(
            fdt.find_node("/soc/uart").unwrap(),
            uart,
            "the unit address may be omitted"
        );
        assert_eq!(fdt.find_node("serial0").unwrap(), uart, "aliases resolve");
        assert_eq!(uart.parent().unwrap().name(), "soc");
        assert_eq!(
            uart.parent().unwrap().parent().unwrap().path().to_string(),
            "/"
        );
        assert!(fdt.find_node("/soc/uart@200").is_none());
        let all: Vec<_> = fdt.nodes().map(|n| n.path().to_string()).collect();
        assert_eq!(all, ["/", "/aliases", "/soc", "/soc/uart@100"]);
    }

    #[test]
    fn malformed_blobs_are_errors_with_offsets() {
        let good = small_tree();
        let total = good.len();
        assert_eq!(
            Fdt::new(&good[..20]).unwrap_err(),
            FdtError::Truncated {
                needed: total,
                available: 20
            }
        );
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        assert!(matches!(
            Fdt::new(&bad_magic),
            Err(FdtError::BadMagic { .. })
        ));
        assert!(matches!(
            Fdt::new(&good[..good.len() - 1]),
            Err(FdtError::Truncated { .. })
        ));

        let unterminated = Builder::default().begin("").begin("child").build();
        assert!(matches!(
            Fdt::new(&unterminated),
            Err(FdtError::BadRoot { .. })
        ));

        let prop_after_child = Builder::default()
            .begin("")
            .begin("child")
            .end()
            .prop_str("late", "x")
            .end()
            .build();
        assert!(matches!(
            Fdt::new(&prop_after_child),
            Err(FdtError::PropertyAfterSubnode { .. })
        ));

        let two_roots = Builder::default().begin("").end().begin("").end().build();
        assert!(matches!(
            Fdt::new(&two_roots),
            Err(FdtError::BadRoot { .. })
        ));

        let mut deep = Builder::default();
        deep.begin("");
        for _ in 0..MAX_DEPTH {
            deep.begin("n");
        }
        for _ in 0..=MAX_DEPTH {
            deep.end();
        }
        assert!(matches!(
            Fdt::new(&deep.build()),
            Err(FdtError::TooDeep { .. })
        ));

        let mut huge_prop = small_tree();
        // The model property's length field sits right after its FDT_PROP token.
        let struct_offset = u32::from_be_bytes(huge_prop[8..12].try_into().unwrap()) as usize;
        huge_prop[struct_offset + 12..struct_offset + 16]
            .copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(
            Fdt::new(&huge_prop),
            Err(FdtError::PropertyOverrun { .. })
        ));
    }

    #[test]
    fn error_messages_say_what_and_where() {
        let message = FdtError::PropertyOverrun {
            offset: 0x48,
            len: 4096,
        }
        .to_string();
        assert_eq!(
            message,
            "property at structure offset 0x48 claims 4096 bytes, past the structure block"
        );
    }

    #[test]
    fn property_lookup_matches_whole_names_only() {
        let blob = Builder::default()
            .begin("")
            .prop_str("a", "first")
            .prop_str("b", "second")
            .prop_str("ab", "third")
            .end()
            .build();
        let fdt = Fdt::new(&blob).unwrap();
        let root = fdt.root();
        let value = |name| root.property(name).and_then(|p| p.as_str());
        assert_eq!(value("a"), Some("first"));
        assert_eq!(value("ab"), Some("third"), "a prefix does not match");
        assert_eq!(value(""), None, "the empty name matches no property");
        assert_eq!(
            value("a\0b"),
            None,
            "a NUL in the wanted name does not match two adjacent strings"
        );
    }

    #[test]
    fn reservations_are_listed_until_the_terminator() {
        let blob = Builder::default()
            .reserve(0, 0x1000)
            .reserve(0x8000, 0x10)
            .begin("")
            .end()
            .build();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(
            fdt.reservations().collect::<Vec<_>>(),
            [(0, 0x1000), (0x8000, 0x10)]
        );
    }

    #[test]
    fn property_value_helpers_check_their_shape() {
        let blob = Builder::default()
            .begin("")
            .prop("compatible", b"a,b\0c,d\0")
            .prop_cells("one", &[7])
            .prop_cells("two", &[1, 2])
            .prop("odd", &[1, 2, 3])
            .end()
            .build();
        let fdt = Fdt::new(&blob).unwrap();
        let root = fdt.root();
        assert_eq!(root.compatible().collect::<Vec<_>>(), ["a,b", "c,d"]);
        assert!(root.is_compatible(&["c,d"]));
        assert_eq!(root.property("one").unwrap().as_u64(), Some(7));
        assert_eq!(root.property("two").unwrap().as_u64(), Some((1 << 32) | 2));
        assert_eq!(root.property("two").unwrap().as_u32(), None);
        assert!(root.property("odd").unwrap().cells().is_none());
        assert_eq!(
            root.property("compatible").unwrap().as_str(),
            None,
            "a list is not a single string"
        );
    }
}
