//! Builds FDT blobs token by token for tests, including ones dtc would never
//! write (NOPs in odd places, properties after subnodes, overruns).

#![allow(
    clippy::cast_possible_truncation,
    reason = "test blobs are a few hundred bytes"
)]

use super::fdt::{
    FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_HEADER_SIZE, FDT_MAGIC, FDT_NOP, FDT_PROP,
};

/// Builds FDT blobs token by token, including ones dtc would never write.
#[derive(Default)]
pub struct Builder {
    structs: Vec<u8>,
    strings: Vec<u8>,
    reservations: Vec<(u64, u64)>,
}

impl Builder {
    fn token(&mut self, token: u32) -> &mut Self {
        self.structs.extend_from_slice(&token.to_be_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }

    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.token(FDT_BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.token(FDT_END_NODE)
    }

    pub fn nop(&mut self) -> &mut Self {
        self.token(FDT_NOP)
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.token(FDT_PROP);
        self.structs
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.structs.extend_from_slice(&offset.to_be_bytes());
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }

    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }

    pub fn prop_str(&mut self, name: &str, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.prop(name, &bytes)
    }

    pub fn reserve(&mut self, address: u64, size: u64) -> &mut Self {
        self.reservations.push((address, size));
        self
    }

    /// The blob, with FDT_END appended.
    pub fn build(&mut self) -> Vec<u8> {
        self.token(FDT_END);
        let rsv_offset = FDT_HEADER_SIZE;
        let struct_offset = rsv_offset + (self.reservations.len() + 1) * 16;
        let strings_offset = struct_offset + self.structs.len();
        let total = strings_offset + self.strings.len();
        let mut blob = Vec::new();
        for field in [
            FDT_MAGIC,
            total as u32,
            struct_offset as u32,
            strings_offset as u32,
            rsv_offset as u32,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structs.len() as u32,
        ] {
            blob.extend_from_slice(&field.to_be_bytes());
        }
        for &(address, size) in self.reservations.iter().chain(&[(0, 0)]) {
            blob.extend_from_slice(&address.to_be_bytes());
            blob.extend_from_slice(&size.to_be_bytes());
        }
        blob.extend_from_slice(&self.structs);
        blob.extend_from_slice(&self.strings);
        blob
    }
}
