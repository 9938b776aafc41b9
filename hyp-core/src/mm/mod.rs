//! Memory management: address types, free-memory computation, page tables.

pub mod address;
pub mod free;
pub mod hyp_map;
pub mod hyp_memory;
pub mod page_table;
