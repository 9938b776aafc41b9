//! Problems found in the hardware description, each naming where it lies.

use core::fmt;

use crate::dt::Node;
use crate::dt::address::AddressError;
use crate::mm::address::PhysRange;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Tessera runs, with the named part unavailable.
    Warning,
    /// Tessera cannot run on this description.
    Fatal,
}

/// Where in the tree a problem lies.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// A node that exists.
    Node(Node<'a>),
    /// A node that was looked for and not found, or something outside the tree.
    Path(&'static str),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Node(node) => write!(f, "{}", node.path()),
            Place::Path(path) => f.write_str(path),
        }
    }
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A required node does not exist.
    MissingNode,
    /// A required property does not exist.
    MissingProperty,
    /// The property's addresses are malformed or not translatable.
    Address(AddressError),
    /// A property has the wrong number of cells.
    CellCount {
        found: usize,
        expected: &'static str,
    },
    /// A value Tessera does not support, with what it is.
    Unsupported(&'static str),
    /// A value that is wrong, with why.
    Invalid(&'static str),
    /// A value that is wrong, with the number in question and why.
    InvalidValue { value: u64, why: &'static str },
    /// More entries than Tessera keeps track of.
    TooMany { limit: usize },
    /// Two regions that must not overlap do.
    Overlap { this: PhysRange, other: PhysRange },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingNode => f.write_str("node missing"),
            Problem::MissingProperty => f.write_str("property missing"),
            Problem::Address(error) => write!(f, "{error}"),
            Problem::CellCount { found, expected } => {
                write!(f, "has {found} cells, expected {expected}")
            }
            Problem::Unsupported(what) => write!(f, "unsupported: {what}"),
            Problem::Invalid(why) => f.write_str(why),
            Problem::InvalidValue { value, why } => write!(f, "{value:#x}: {why}"),
            Problem::TooMany { limit } => write!(f, "more than {limit} entries"),
            Problem::Overlap { this, other } => write!(f, "{this} overlaps {other}"),
        }
    }
}

/// One problem: where, which property, what.
#[derive(Debug, Clone, Copy)]
pub struct Issue<'a> {
    pub severity: Severity,
    pub place: Place<'a>,
    /// The property concerned, or "" for the node itself.
    pub property: &'static str,
    pub problem: Problem,
}

impl fmt::Display for Issue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.place)?;
        if !self.property.is_empty() {
            write!(f, ": {}", self.property)?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// Most problems one boot reports; the rest are counted.
pub const MAX_ISSUES: usize = 16;

/// The problems found so far.
#[derive(Debug, Default)]
pub struct Issues<'a> {
    list: heapless::Vec<Issue<'a>, MAX_ISSUES>,
    dropped: usize,
}

impl<'a> Issues<'a> {
    pub fn push(&mut self, issue: Issue<'a>) {
        if self.list.push(issue).is_err() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Records a fatal problem.
    pub fn fatal(&mut self, place: Place<'a>, property: &'static str, problem: Problem) {
        self.push(Issue {
            severity: Severity::Fatal,
            place,
            property,
            problem,
        });
    }

    /// Records a problem Tessera can run with.
    pub fn warn(&mut self, place: Place<'a>, property: &'static str, problem: Problem) {
        self.push(Issue {
            severity: Severity::Warning,
            place,
            property,
            problem,
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = &Issue<'a>> {
        self.list.iter()
    }

    pub fn has_fatal(&self) -> bool {
        self.list.iter().any(|i| i.severity == Severity::Fatal)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.dropped == 0
    }

    /// Problems beyond [`MAX_ISSUES`] that were counted but not kept.
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}
