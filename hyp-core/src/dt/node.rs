//! Nodes of a validated tree: names, paths, parents, children, properties.

#![deny(clippy::indexing_slicing)]

use alloc::boxed::Box;
use core::fmt;

use super::fdt::{FDT_TOKEN_SIZE, Fdt, MAX_DEPTH, Token, cstr_at, token_at};
use super::property::{Property, StringList};

/// A node: a position in a validated structure block plus the positions of
/// its ancestors (so that `#address-cells` and `ranges` can be read upwards).
/// Offsets are u32 (a blob is at most [`FDT_MAX_SIZE`]) to keep nodes small:
/// discovery holds many of them on the boot stack.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    /// Offset of this node's `FDT_BEGIN_NODE` token in the structure block.
    offset: u32,
    /// Offset of the first token after the name (properties, then
    /// children), kept so that property lookups do not rescan the name.
    body: u32,
    depth: u8,
    /// Offsets of the ancestors' `FDT_BEGIN_NODE` tokens, root first.
    ancestors: [u32; MAX_DEPTH],
}

impl fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node({})", self.path())
    }
}

impl PartialEq for Node<'_> {
    /// Two handles are the same node if they point at the same token of the same blob.
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset && self.fdt.same_blob(&other.fdt)
    }
}

impl Eq for Node<'_> {}

/// Offsets and depths fit their small types: the blob is at most
/// [`FDT_MAX_SIZE`] bytes and validation bounds the depth by [`MAX_DEPTH`].
fn narrow(offset: usize) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
}

impl<'a> Node<'a> {
    /// The node whose `FDT_BEGIN_NODE` token is at `offset`.
    pub(super) fn at(
        fdt: Fdt<'a>,
        offset: usize,
        depth: usize,
        ancestors: [u32; MAX_DEPTH],
    ) -> Node<'a> {
        let body = match token_at(fdt.structs(), offset) {
            Ok((Token::BeginNode { .. }, next)) => next,
            // Validation rules this out; such a node has no properties or children.
            _ => usize::MAX,
        };
        Node::with_body(fdt, offset, body, depth, ancestors)
    }

    /// As [`Node::at`], for a caller that has decoded the token already and
    /// knows where the name ends.
    fn with_body(
        fdt: Fdt<'a>,
        offset: usize,
        body: usize,
        depth: usize,
        ancestors: [u32; MAX_DEPTH],
    ) -> Node<'a> {
        Node {
            fdt,
            offset: narrow(offset),
            body: narrow(body),
            depth: u8::try_from(depth).unwrap_or(u8::MAX),
            ancestors,
        }
    }

    fn offset(&self) -> usize {
        self.offset as usize
    }

    /// The node's name including its unit address (`serial@7e201000`); the
    /// root's name is empty.
    pub fn name(&self) -> &'a str {
        // A node's token was read at its offset: the name's offset fits.
        cstr_at(
            self.fdt.structs(),
            self.offset().saturating_add(FDT_TOKEN_SIZE),
        )
        .unwrap_or("")
    }

    /// The name without its unit address.
    pub fn base_name(&self) -> &'a str {
        let name = self.name();
        name.split_once('@').map_or(name, |(base, _)| base)
    }

    /// The tree this node belongs to.
    pub fn fdt(&self) -> &Fdt<'a> {
        &self.fdt
    }

    /// The node's full path, for messages.
    pub fn path(&self) -> NodePath<'a> {
        NodePath { node: *self }
    }

    /// The parent node, or `None` for the root.
    pub fn parent(&self) -> Option<Node<'a>> {
        let parent_depth = usize::from(self.depth).checked_sub(1)?;
        let offset = *self.ancestors.get(parent_depth)?;
        Some(Node::at(
            self.fdt,
            offset as usize,
            parent_depth,
            self.ancestors,
        ))
    }

    /// Offset of the first token after the node's name.
    pub(super) fn body(&self) -> usize {
        self.body as usize
    }

    /// The node's properties in order.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            fdt: self.fdt,
            offset: self.body(),
        }
    }

    /// The property called `name`.
    pub fn property(&self, name: &str) -> Option<Property<'a>> {
        self.properties().find_named(name)
    }

    /// Whether the node has a property called `name` (boolean properties).
    pub fn has_property(&self, name: &str) -> bool {
        self.property(name).is_some()
    }

    /// The node's children in order.
    pub fn children(&self) -> Children<'a> {
        // Skip the properties: they end at the first token that is not PROP or NOP.
        let structs = self.fdt.structs();
        let mut offset = self.body();
        while let Ok((Token::Nop | Token::Property { .. }, next)) = token_at(structs, offset) {
            offset = next;
        }
        let mut ancestors = self.ancestors;
        let depth = usize::from(self.depth);
        let offset = match ancestors.get_mut(depth) {
            Some(slot) => {
                *slot = self.offset;
                offset
            }
            // Validation bounds the depth, so this does not happen; no children then.
            None => usize::MAX,
        };
        Children {
            fdt: self.fdt,
            offset,
            depth: depth + 1,
            ancestors,
        }
    }

    /// The child whose name is `name`, or whose base name is `name` when
    /// `name` has no unit address.
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        let name = name.as_bytes();
        let exact = name.contains(&b'@');
        self.children()
            .find_named(|full| full == name || (!exact && without_unit_address(full) == name))
    }

    /// The child `name` names, as [`Node::child`], but never a guess: a
    /// name without unit address that two children have (`cpu` for
    /// `cpu@0` and `cpu@1`) is [`Lookup::Ambiguous`], unless a child has
    /// exactly that name.
    pub fn unique_child(&self, name: &'a str) -> Result<Node<'a>, Lookup<'a>> {
        if name.contains('@') {
            return self.child(name).ok_or(Lookup::NotFound);
        }
        // One walk over the children (each walk passes their subtrees).
        let bytes = name.as_bytes();
        let (mut first, mut matches) = (None, 0usize);
        for child in self.children() {
            let full = child.name().as_bytes();
            if full == bytes {
                return Ok(child);
            }
            if without_unit_address(full) == bytes {
                first.get_or_insert(child);
                matches = matches.saturating_add(1);
            }
        }
        match (first, matches) {
            (Some(only), 1) => Ok(only),
            (Some(_), _) => Err(Lookup::Ambiguous(Box::new(Ambiguity {
                parent: *self,
                name,
            }))),
            (None, _) => Err(Lookup::NotFound),
        }
    }

    /// Follows a relative path below this node as [`Node::unique_child`]
    /// does each step.
    pub fn find_unique_descendant(&self, path: &'a str) -> Result<Node<'a>, Lookup<'a>> {
        path.split('/')
            .filter(|part| !part.is_empty())
            .try_fold(*self, |node, part| node.unique_child(part))
    }

    /// Follows a relative path (`soc/serial@7e201000`) below this node.
    pub fn find_descendant(&self, path: &str) -> Option<Node<'a>> {
        path.split('/')
            .filter(|part| !part.is_empty())
            .try_fold(*self, |node, part| node.child(part))
    }

    /// The `compatible` strings.
    pub fn compatible(&self) -> StringList<'a> {
        self.property("compatible")
            .map_or(StringList::EMPTY, |p| p.strings())
    }

    /// Whether any `compatible` string is in `any_of`.
    pub fn is_compatible(&self, any_of: &[&str]) -> bool {
        self.compatible().any(|c| any_of.contains(&c))
    }

    /// `status` is absent, "okay" or "ok" (§2.3.4).
    pub fn is_enabled(&self) -> bool {
        self.property("status")
            .and_then(|p| p.as_str())
            .is_none_or(|s| s == "okay" || s == "ok")
    }

    /// Depth below the root (the root is 0).
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }
}

/// Why a path names no single node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    NotFound,
    /// A name without unit address that several children of one node have
    /// (boxed: a node is large, and a lookup is returned often).
    Ambiguous(Box<Ambiguity<'a>>),
}

/// `name`, without a unit address, is the base name of several children
/// of `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguity<'a> {
    pub parent: Node<'a>,
    pub name: &'a str,
}

/// "names more than one node: /cpus/cpu@0, /cpus/cpu@1: give the unit
/// address", or "names no node".
impl fmt::Display for Lookup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Lookup::Ambiguous(ambiguity) = self else {
            return f.write_str("names no node");
        };
        f.write_str("names more than one node:")?;
        let name = ambiguity.name.as_bytes();
        let candidates = ambiguity
            .parent
            .children()
            .filter(|child| without_unit_address(child.name().as_bytes()) == name);
        for (index, candidate) in candidates.enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            write!(f, "{separator}{}", candidate.path())?;
        }
        f.write_str(": give the unit address")
    }
}

/// A node name without its unit address (`serial` of `serial@7e201000`).
fn without_unit_address(name: &[u8]) -> &[u8] {
    name.iter()
        .position(|&b| b == b'@')
        .and_then(|at| name.get(..at))
        .unwrap_or(name)
}

/// Displays a node's full path (`/soc/serial@7e201000`).
#[derive(Clone, Copy)]
pub struct NodePath<'a> {
    node: Node<'a>,
}

impl fmt::Display for NodePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let depth = self.node.depth();
        if depth == 0 {
            return f.write_str("/");
        }
        let structs = self.node.fdt.structs();
        for level in 1..=depth {
            let offset = if level == depth {
                Some(self.node.offset)
            } else {
                self.node.ancestors.get(level).copied()
            };
            let name = offset
                .and_then(|o| cstr_at(structs, (o as usize).saturating_add(FDT_TOKEN_SIZE)).ok())
                .unwrap_or("?");
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Iterator over a node's properties.
#[derive(Debug)]
pub struct Properties<'a> {
    fdt: Fdt<'a>,
    offset: usize,
}

impl<'a> Properties<'a> {
    /// The next property: its name's offset in the strings block, and its value.
    fn next_raw(&mut self) -> Option<(usize, &'a [u8])> {
        let structs = self.fdt.structs();
        loop {
            let (token, next) = token_at(structs, self.offset).ok()?;
            self.offset = next;
            match token {
                Token::Nop => {}
                Token::Property {
                    value_start,
                    len,
                    name_offset,
                } => {
                    let value = structs.get(value_start..value_start.checked_add(len)?)?;
                    return Some((usize::try_from(name_offset).ok()?, value));
                }
                _ => return None,
            }
        }
    }

    /// The first remaining property called `name`. Compares each name in
    /// place, without decoding the names that do not match.
    fn find_named(&mut self, name: &str) -> Option<Property<'a>> {
        while let Some((name_offset, value)) = self.next_raw() {
            if let Some(name) = self.fdt.string_if_equal(name_offset, name) {
                return Some(Property { name, value });
            }
        }
        None
    }
}

impl<'a> Iterator for Properties<'a> {
    type Item = Property<'a>;

    fn next(&mut self) -> Option<Property<'a>> {
        let (name_offset, value) = self.next_raw()?;
        let name = self.fdt.string_at(name_offset)?;
        Some(Property { name, value })
    }
}

/// Iterator over a node's children.
#[derive(Debug)]
pub struct Children<'a> {
    fdt: Fdt<'a>,
    offset: usize,
    depth: usize,
    ancestors: [u32; MAX_DEPTH],
}

impl<'a> Children<'a> {
    /// The next child, without building its [`Node`]: the offsets of its
    /// `FDT_BEGIN_NODE` token and of its body, and its name.
    fn next_entry(&mut self) -> Option<(usize, usize, &'a [u8])> {
        let structs = self.fdt.structs();
        loop {
            match token_at(structs, self.offset).ok()? {
                (Token::Nop, next) => self.offset = next,
                (Token::BeginNode { name }, body) if self.depth < MAX_DEPTH => {
                    let offset = self.offset;
                    self.offset = skip_body(structs, body)?;
                    return Some((offset, body, name));
                }
                _ => return None,
            }
        }
    }

    fn node(&self, offset: usize, body: usize) -> Node<'a> {
        Node::with_body(self.fdt, offset, body, self.depth, self.ancestors)
    }

    /// The first remaining child whose name `matches`. Only that child
    /// becomes a [`Node`] (a copy of its ancestors' offsets), not every
    /// child passed over.
    fn find_named(&mut self, matches: impl Fn(&[u8]) -> bool) -> Option<Node<'a>> {
        while let Some((offset, body, name)) = self.next_entry() {
            if matches(name) {
                return Some(self.node(offset, body));
            }
        }
        None
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        let (offset, body, _) = self.next_entry()?;
        Some(self.node(offset, body))
    }
}

/// Returns the offset just past the `FDT_END_NODE` that closes the node
/// whose body (the tokens after its name) starts at `offset`.
fn skip_body(structs: &[u8], mut offset: usize) -> Option<usize> {
    let mut depth = 1usize;
    loop {
        let (token, next) = token_at(structs, offset).ok()?;
        offset = next;
        match token {
            Token::BeginNode { .. } => depth = depth.saturating_add(1),
            Token::EndNode => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(offset);
                }
            }
            Token::Property { .. } | Token::Nop => {}
            Token::End => return None,
        }
    }
}

/// Depth-first iterator over all nodes: a linear walk of the structure block.
#[derive(Debug)]
pub struct Nodes<'a> {
    fdt: Fdt<'a>,
    offset: usize,
    depth: usize,
    ancestors: [u32; MAX_DEPTH],
}

impl<'a> Nodes<'a> {
    /// All nodes of `fdt`, from the root.
    pub(super) fn new(fdt: Fdt<'a>) -> Nodes<'a> {
        Nodes {
            fdt,
            offset: 0,
            depth: 0,
            ancestors: [0; MAX_DEPTH],
        }
    }
}

impl<'a> Iterator for Nodes<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        let structs = self.fdt.structs();
        loop {
            let (token, next) = token_at(structs, self.offset).ok()?;
            match token {
                Token::BeginNode { .. } => {
                    let node =
                        Node::with_body(self.fdt, self.offset, next, self.depth, self.ancestors);
                    *self.ancestors.get_mut(self.depth)? = narrow(self.offset);
                    self.depth = self.depth.saturating_add(1);
                    self.offset = next;
                    return Some(node);
                }
                Token::EndNode => self.depth = self.depth.checked_sub(1)?,
                Token::Property { .. } | Token::Nop => {}
                Token::End => return None,
            }
            self.offset = next;
        }
    }
}
