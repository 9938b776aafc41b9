//! What a passthrough device depends on: the providers its node and
//! subnodes name by phandle (clocks, pin control, power domains, resets,
//! ...). A guest cannot drive a provider it does not own, so each is either
//! carried into the guest's tree (a fixed clock: a constant with no
//! registers; or a node of a device given to the same partition) or stays
//! with the host, left as firmware set it up. A property is kept in the
//! guest's copy only when every provider it names is carried
//! (`crate::guest::passthrough`); otherwise it is left out and
//! `check-config` says so ([`super::Note::StaysWithHost`]).

use alloc::vec::Vec;

use crate::dt::{Node, Property};

/// How a dependency property's name is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyName {
    /// Exactly this name.
    Exact(&'static str),
    /// This prefix and a number (`pinctrl-0`).
    Numbered(&'static str),
    /// Any name with this suffix (`vdd-supply`).
    Suffix(&'static str),
}

/// A property that refers to providers: `<phandle args...>` entries whose
/// argument count is the provider's `cells` property (none when `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyProperty {
    pub name: PropertyName,
    pub cells: Option<&'static str>,
    /// The property naming the entries, dropped along with them.
    pub names: Option<&'static str>,
}

const fn dependency(
    name: PropertyName,
    cells: Option<&'static str>,
    names: Option<&'static str>,
) -> DependencyProperty {
    DependencyProperty { name, cells, names }
}

/// Every dependency property Tessera knows (the common bindings of
/// Linux's `Documentation/devicetree/bindings` and dt-schema). A property
/// not listed here is copied to the guest as it is.
pub const DEPENDENCY_PROPERTIES: &[DependencyProperty] = &[
    dependency(
        PropertyName::Exact("clocks"),
        Some("#clock-cells"),
        Some("clock-names"),
    ),
    // Rates and parents firmware (or the guest's driver core) sets up:
    // provider references like `clocks`; the rates go with the clocks.
    dependency(
        PropertyName::Exact("assigned-clocks"),
        Some("#clock-cells"),
        Some("assigned-clock-rates"),
    ),
    dependency(
        PropertyName::Exact("assigned-clock-parents"),
        Some("#clock-cells"),
        None,
    ),
    dependency(
        PropertyName::Exact("resets"),
        Some("#reset-cells"),
        Some("reset-names"),
    ),
    dependency(
        PropertyName::Exact("power-domains"),
        Some("#power-domain-cells"),
        Some("power-domain-names"),
    ),
    dependency(
        PropertyName::Numbered("pinctrl-"),
        None,
        Some("pinctrl-names"),
    ),
    dependency(
        PropertyName::Exact("dmas"),
        Some("#dma-cells"),
        Some("dma-names"),
    ),
    dependency(
        PropertyName::Exact("phys"),
        Some("#phy-cells"),
        Some("phy-names"),
    ),
    dependency(PropertyName::Exact("iommus"), Some("#iommu-cells"), None),
    dependency(
        PropertyName::Exact("mboxes"),
        Some("#mbox-cells"),
        Some("mbox-names"),
    ),
    dependency(PropertyName::Suffix("-supply"), None, None),
    dependency(PropertyName::Exact("gpios"), Some("#gpio-cells"), None),
    dependency(PropertyName::Suffix("-gpios"), Some("#gpio-cells"), None),
];

impl DependencyProperty {
    /// The entry of [`DEPENDENCY_PROPERTIES`] that `name` is, if any.
    pub fn of(name: &str) -> Option<&'static DependencyProperty> {
        DEPENDENCY_PROPERTIES.iter().find(|d| d.matches(name))
    }

    /// Whether the providers are clocks, so that a fixed clock can be
    /// carried into the guest's tree.
    pub fn names_clocks(&self) -> bool {
        self.cells == Some(CLOCK_CELLS)
    }

    fn matches(&self, name: &str) -> bool {
        match self.name {
            PropertyName::Exact(exact) => name == exact,
            PropertyName::Numbered(prefix) => name.strip_prefix(prefix).is_some_and(|number| {
                !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
            }),
            PropertyName::Suffix(suffix) => name.len() > suffix.len() && name.ends_with(suffix),
        }
    }
}

/// One provider a device (or one of its subnodes) refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency<'a> {
    /// The node whose property names the provider: the device or a subnode.
    pub consumer: Node<'a>,
    pub property: &'a str,
    pub provider: Node<'a>,
    /// The provider's phandle in the host tree.
    pub phandle: u32,
    /// Whether the guest's tree has this provider: a fixed clock named by a
    /// clock property (copied), or a node of a device given to the same
    /// partition. Otherwise the provider stays with the host, and the
    /// guest's copy leaves out the property that names it.
    pub carried: bool,
}

/// The argument-count property of clock providers.
const CLOCK_CELLS: &str = "#clock-cells";

/// Compatible of a clock with a constant rate and no registers.
const FIXED_CLOCK_COMPATIBLE: &str = "fixed-clock";

/// Whether `node` is a fixed clock a guest can be given a copy of: no
/// registers, no clock inputs, `#clock-cells = <0>`.
pub fn is_fixed_clock(node: &Node<'_>) -> bool {
    node.is_compatible(&[FIXED_CLOCK_COMPATIBLE])
        && !node.has_property("reg")
        && !node.has_property("clocks")
        && node.property("#clock-cells").and_then(|p| p.as_u32()) == Some(0)
}

/// The providers of one dependency property, in order (empty entries,
/// phandle 0, skipped). `None` when an entry names no node or the
/// argument cells run out: the rest cannot be read.
pub fn providers<'a>(
    node: &Node<'a>,
    property: &Property<'a>,
    kind: &DependencyProperty,
) -> Option<Vec<(u32, Node<'a>)>> {
    let mut cells = property.cells()?;
    let mut found = Vec::new();
    while let Some(phandle) = cells.next() {
        if phandle == 0 {
            continue;
        }
        let provider = node.fdt().find_phandle(phandle)?;
        let arguments = kind.cells.map_or(0, |c| {
            provider.property(c).and_then(|p| p.as_u32()).unwrap_or(0)
        });
        for _ in 0..arguments {
            cells.next()?;
        }
        found.push((phandle, provider));
    }
    Some(found)
}

/// Every dependency of `device` and its subnodes.
pub(super) fn read<'a>(device: &Node<'a>) -> Vec<Dependency<'a>> {
    let mut found = Vec::new();
    read_node(device, &mut found);
    found
}

fn read_node<'a>(node: &Node<'a>, found: &mut Vec<Dependency<'a>>) {
    for property in node.properties() {
        let Some(kind) = DependencyProperty::of(property.name) else {
            continue;
        };
        for (phandle, provider) in providers(node, &property, kind).unwrap_or_default() {
            found.push(Dependency {
                consumer: *node,
                property: property.name,
                provider,
                phandle,
                carried: kind.names_clocks() && is_fixed_clock(&provider),
            });
        }
    }
    for child in node.children() {
        read_node(&child, found);
    }
}

/// Marks as carried every dependency whose provider lies inside one of
/// `devices` (all given to one partition): the guest's tree has it.
pub(super) fn mark_shared_providers(devices: &mut [super::PassthroughDevice<'_>]) {
    let nodes: Vec<Node<'_>> = devices.iter().map(|d| d.node).collect();
    for device in devices.iter_mut() {
        for dependency in &mut device.dependencies {
            if nodes
                .iter()
                .any(|n| super::is_within(&dependency.provider, n))
            {
                dependency.carried = true;
            }
        }
    }
}
