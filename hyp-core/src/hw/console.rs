//! The console UART named by `/chosen/stdout-path`.

#![deny(clippy::indexing_slicing)]

use super::issue::{Issues, Place, Problem};
use crate::dt::address::reg_entry;
use crate::dt::{Fdt, Node};
use crate::mm::address::PhysRange;

pub use platform::uart::UartKind;

fn uart_kind(node: &Node<'_>) -> Option<UartKind> {
    if node.is_compatible(&["arm,pl011"]) {
        Some(UartKind::Pl011)
    } else if node.is_compatible(&["brcm,bcm2835-aux-uart"]) {
        Some(UartKind::MiniUart)
    } else {
        None
    }
}

/// The console.
#[derive(Debug, Clone, Copy)]
pub struct Console<'a> {
    pub node: Node<'a>,
    pub kind: UartKind,
    /// CPU-physical register window.
    pub registers: PhysRange,
    /// What follows ':' in stdout-path (e.g. "115200n8"); informational, the
    /// UART keeps the settings firmware gave it.
    pub options: Option<&'a str>,
    /// Its interrupt (an SPI's INTID), once the GIC is known; console
    /// input is taken on it.
    pub interrupt: Option<u32>,
}

/// Finds the console UART. A missing or unusable one is a warning: Tessera
/// runs, silently.
pub fn discover<'a>(fdt: &Fdt<'a>, issues: &mut Issues<'a>) -> Option<Console<'a>> {
    let chosen = fdt.find_node("/chosen")?;
    let property = chosen
        .property("stdout-path")
        .or_else(|| chosen.property("linux,stdout-path"))?;
    let Some(value) = property.as_str() else {
        issues.warn(
            Place::Node(chosen),
            "stdout-path",
            Problem::Invalid("not a string"),
        );
        return None;
    };
    let (path, options) = match value.split_once(':') {
        Some((path, options)) => (path, Some(options)),
        None => (value, None),
    };
    let Some(node) = fdt.find_node(path) else {
        issues.warn(
            Place::Node(chosen),
            "stdout-path",
            Problem::Invalid("names no node (nor alias)"),
        );
        return None;
    };
    let Some(kind) = uart_kind(&node) else {
        issues.warn(
            Place::Node(node),
            "compatible",
            Problem::Unsupported("console UART other than arm,pl011 or brcm,bcm2835-aux-uart"),
        );
        return None;
    };
    match reg_entry(&node, 0) {
        Ok(registers) => Some(Console {
            node,
            kind,
            registers,
            options,
            interrupt: None,
        }),
        Err(error) => {
            issues.warn(Place::Node(node), "reg", Problem::Address(error));
            None
        }
    }
}
