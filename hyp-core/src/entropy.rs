//! Seeds for the partitions' kernels: `/chosen/rng-seed` (32 bytes, which
//! Linux credits to its random pool) and `/chosen/kaslr-seed` (which turns
//! KASLR on), fresh for every partition and every boot.
//!
//! Tessera draws a key once at boot from the best source the board has
//! ([`Source`]): RNDR where the CPU has FEAT_RNG, else the seed the
//! firmware or bootloader left in the board's `/chosen`. Each partition's
//! boot then gets a ChaCha20 block (RFC 8439) under that key, its nonce the
//! partition, the boot count and the counter (and a fresh RNDR value where
//! there is one), so no two boots share a seed and no partition can learn
//! another's.

/// Where Tessera's key came from: every source there was is absorbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The CPU's random number instruction (FEAT_RNG) gave 256 bits.
    pub rndr: bool,
    /// The board DT's `/chosen/rng-seed` or `kaslr-seed`, from the
    /// firmware or bootloader.
    pub board_seed: bool,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match (self.rndr, self.board_seed) {
            (true, true) => "the CPU's RNDR (FEAT_RNG) and the board DT's /chosen seeds",
            (true, false) => "the CPU's RNDR (FEAT_RNG)",
            _ => "the board DT's /chosen seeds",
        }
    }
}

/// Bytes of the key.
pub const KEY_BYTES: usize = 32;

/// Tessera's key and where it came from, once boot has found one.
static KEY: spin::Once<(Source, [u8; KEY_BYTES])> = spin::Once::new();

/// Keeps the key drawn at boot.
pub fn set_key(source: Source, key: [u8; KEY_BYTES]) {
    KEY.call_once(|| (source, key));
}

/// The key drawn at boot, if there was a source.
pub fn key() -> Option<&'static (Source, [u8; KEY_BYTES])> {
    KEY.get()
}

/// One partition boot's seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    pub rng_seed: [u8; 32],
    pub kaslr_seed: u64,
}

/// Absorbs seed material of any length into a key: each 32-byte chunk
/// of each part is XORed into the key, which then goes through a ChaCha20
/// block whose nonce names the part, the chunk and the part's length, so
/// that no two parts (or a part and its repetition, or its trailing zeros)
/// cancel out.
pub fn key_from(material: &[&[u8]]) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    for (part, bytes) in (0u32..).zip(material) {
        let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        for (index, chunk) in (0u32..).zip(bytes.chunks(KEY_BYTES)) {
            for (slot, byte) in key.iter_mut().zip(chunk) {
                *slot ^= byte;
            }
            let block = chacha20_block(&key, index, &[part, length, 0]);
            key.copy_from_slice(block.get(..KEY_BYTES).unwrap_or(&[0; KEY_BYTES]));
        }
    }
    key
}

/// The seeds of boot `boot_count` of partition `partition`, at counter
/// value `counter`, mixed with `fresh` (an RNDR value where there is one).
pub fn seeds(
    key: &[u8; KEY_BYTES],
    partition: u32,
    boot_count: u32,
    counter: u64,
    fresh: u64,
) -> Seeds {
    #[allow(clippy::cast_possible_truncation, reason = "splitting into words")]
    let nonce = [
        partition,
        (counter ^ fresh) as u32,
        ((counter ^ fresh) >> 32) as u32,
    ];
    let block = chacha20_block(key, boot_count, &nonce);
    let mut rng_seed = [0u8; 32];
    rng_seed.copy_from_slice(block.get(..32).unwrap_or(&[0; 32]));
    let mut kaslr = [0u8; 8];
    kaslr.copy_from_slice(block.get(32..40).unwrap_or(&[0; 8]));
    Seeds {
        rng_seed,
        kaslr_seed: u64::from_le_bytes(kaslr),
    }
}

/// "expand 32-byte k" (RFC 8439 §2.3).
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
/// Double rounds of ChaCha20.
const DOUBLE_ROUNDS: usize = 10;

fn quarter_round(state: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    state[a] = state[a].wrapping_add(state[b]);
    state[d] = (state[d] ^ state[a]).rotate_left(16);
    state[c] = state[c].wrapping_add(state[d]);
    state[b] = (state[b] ^ state[c]).rotate_left(12);
    state[a] = state[a].wrapping_add(state[b]);
    state[d] = (state[d] ^ state[a]).rotate_left(8);
    state[c] = state[c].wrapping_add(state[d]);
    state[b] = (state[b] ^ state[c]).rotate_left(7);
}

/// The ChaCha20 block function (RFC 8439 §2.3).
#[allow(
    clippy::indexing_slicing,
    reason = "fixed indices into a 16-word state"
)]
pub fn chacha20_block(key: &[u8; KEY_BYTES], counter: u32, nonce: &[u32; 3]) -> [u8; 64] {
    let mut state = [0u32; 16];
    state[..4].copy_from_slice(&SIGMA);
    for (word, bytes) in state[4..12].iter_mut().zip(key.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    state[12] = counter;
    state[13..16].copy_from_slice(nonce);
    let initial = state;
    for _ in 0..DOUBLE_ROUNDS {
        quarter_round(&mut state, 0, 4, 8, 12);
        quarter_round(&mut state, 1, 5, 9, 13);
        quarter_round(&mut state, 2, 6, 10, 14);
        quarter_round(&mut state, 3, 7, 11, 15);
        quarter_round(&mut state, 0, 5, 10, 15);
        quarter_round(&mut state, 1, 6, 11, 12);
        quarter_round(&mut state, 2, 7, 8, 13);
        quarter_round(&mut state, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for ((chunk, word), first) in out.chunks_exact_mut(4).zip(state).zip(initial) {
        chunk.copy_from_slice(&word.wrapping_add(first).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 §2.3.2's test vector.
    #[test]
    fn the_block_function_matches_rfc_8439() {
        let key: [u8; 32] = core::array::from_fn(|i| u8::try_from(i).unwrap());
        let nonce = [0x0900_0000, 0x4a00_0000, 0x0000_0000];
        let block = chacha20_block(&key, 1, &nonce);
        let expected_start = [
            0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20,
            0x71, 0xc4,
        ];
        let expected_end = [
            0xb5, 0x12, 0x9c, 0xd1, 0xde, 0x16, 0x4e, 0xb9, 0xcb, 0xd0, 0x83, 0xe8, 0xa2, 0x50,
            0x3c, 0x4e,
        ];
        assert_eq!(block[..16], expected_start);
        assert_eq!(block[48..], expected_end);
    }

    #[test]
    fn every_partition_and_boot_gets_its_own_seeds() {
        let key = key_from(&[b"a board's seed"]);
        let first = seeds(&key, 0, 1, 1000, 0);
        assert_ne!(first, seeds(&key, 1, 1, 1000, 0), "another partition");
        assert_ne!(first, seeds(&key, 0, 2, 1000, 0), "a restart");
        assert_ne!(first, seeds(&key, 0, 1, 1001, 0), "another time");
        assert_ne!(first, seeds(&key, 0, 1, 1000, 7), "fresh randomness");
        assert_ne!(first.rng_seed, [0; 32]);
        assert_ne!(first.kaslr_seed, 0);
        assert_eq!(
            first,
            seeds(&key, 0, 1, 1000, 0),
            "a function of its inputs"
        );
    }

    #[test]
    fn every_byte_of_the_material_counts() {
        let long: [u8; 40] = core::array::from_fn(|i| u8::try_from(i).unwrap());
        let mut changed = long;
        changed[39] ^= 1;
        assert_ne!(key_from(&[&long]), key_from(&[&changed]));
        assert_ne!(key_from(&[b"ab"]), key_from(&[b"a", b"b"]));
        // Parts that are equal (a firmware filling both seeds from one
        // draw) or repeated do not cancel, nor do trailing zeros vanish.
        let draw = [0x5a; 8];
        assert_ne!(key_from(&[&draw, &draw]), key_from(&[]));
        let twice: [u8; 64] = [7; 64];
        assert_ne!(key_from(&[&twice]), key_from(&[]));
        assert_ne!(key_from(&[b"seed"]), key_from(&[b"seed\0"]));
    }
}
