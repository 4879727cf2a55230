//! Byte-string keys: hashing (rustc-hash), equality without `memcmp` for short keys, an
//! interner that numbers keys in order of first appearance, and a parallel-built name index.

use rayon::prelude::*;
use rustc_hash::FxHasher;
use std::hash::Hasher;

/// Bytes `b` (at most 8) as a little-endian integer, without a call to `memcpy`: overlapping
/// fixed-size loads hold the same bytes at the same places.
#[inline(always)]
pub(super) fn load_le(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
        let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]) as u64;
        lo | (hi << ((n - 4) * 8))
    } else if n > 0 {
        (b[0] as u64) | ((b[n / 2] as u64) << (n / 2 * 8)) | ((b[n - 1] as u64) << ((n - 1) * 8))
    } else {
        0
    }
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Hash of a byte string. Every bit is used: the low ones pick a slot, the high ones are a tag
/// and a shard.
#[inline]
pub(super) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(b);
    h.finish()
}

/// Byte-string equality without a call to `memcmp` for the short keys ids usually are.
#[inline(always)]
pub(super) fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n <= 8 {
        load_le(a) == load_le(b)
    } else if n <= 16 {
        word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
    } else {
        a == b
    }
}

/// Interns byte strings: ids in order of first appearance, keys copied into one arena, an
/// open-addressing table of `(hash tag, id)` with the full hashes kept (so growing and merging
/// never rehash keys).
#[derive(Default)]
pub(super) struct Interner {
    /// Per slot: `(high 32 bits of the hash) << 32 | (id + 1)`, 0 = empty; a power of two long.
    slots: Vec<u64>,
    pub(super) hashes: Vec<u64>,
    /// Key `i` is `arena[offs[i]..offs[i + 1]]`.
    offs: Vec<usize>,
    arena: Vec<u8>,
    /// The last key interned (rows often repeat the previous row's task).
    last: Option<u32>,
    /// Direct-mapped cache for keys of at most 8 bytes: `(key bytes as an integer,
    /// (id + 1) << 8 | length)`. Worker and label ids recur on every row; this spares them the
    /// hash and the table probe.
    small: Vec<(u64, u64)>,
}

const SMALL_CACHE: usize = 1024;
/// 2^64 divided by the golden ratio (odd): spreads integer keys over the top bits of a product.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Interner {
    pub(super) fn len(&self) -> usize {
        self.hashes.len()
    }

    #[inline(always)]
    pub(super) fn key(&self, id: usize) -> &[u8] {
        &self.arena[self.offs[id]..self.offs[id + 1]]
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let mask = cap - 1;
        let mut slots = vec![0u64; cap];
        for (id, &h) in self.hashes.iter().enumerate() {
            let mut i = h as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = (h & 0xffff_ffff_0000_0000) | (id as u64 + 1);
        }
        self.slots = slots;
    }

    /// The id of `key` (hash `h`), adding it when new. `None` past 2^32 - 2 keys.
    #[inline]
    pub(super) fn intern_hashed(&mut self, key: &[u8], h: u64) -> Option<u32> {
        if self.offs.is_empty() {
            self.offs.push(0);
        }
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let tag = h & 0xffff_ffff_0000_0000;
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                let id = u32::try_from(self.len())
                    .ok()
                    .filter(|&v| v < u32::MAX - 1)?;
                self.slots[i] = tag | (id as u64 + 1);
                self.hashes.push(h);
                self.arena.extend_from_slice(key);
                self.offs.push(self.arena.len());
                return Some(id);
            }
            if s & 0xffff_ffff_0000_0000 == tag {
                let id = (s as u32 - 1) as usize;
                if same_key(self.key(id), key) {
                    return Some(id as u32);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `key` (hash `h`) if present.
    fn find(&self, key: &[u8], h: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = h & 0xffff_ffff_0000_0000;
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s & 0xffff_ffff_0000_0000 == tag {
                let id = (s as u32 - 1) as usize;
                if same_key(self.key(id), key) {
                    return Some(id as u32);
                }
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub(super) fn intern(&mut self, key: &[u8]) -> Option<u32> {
        if let Some(last) = self.last {
            if same_key(self.key(last as usize), key) {
                return Some(last);
            }
        }
        let id = if key.len() <= 8 {
            let v = load_le(key);
            let n = key.len() as u64;
            // Fibonacci hashing of the key as an integer: one multiply, top bits kept.
            let slot = ((v ^ n).wrapping_mul(FIBONACCI) >> 54) as usize & (SMALL_CACHE - 1);
            if self.small.is_empty() {
                self.small = vec![(0, 0); SMALL_CACHE];
            }
            let (cv, meta) = self.small[slot];
            if cv == v && meta & 0xff == n && meta >> 8 != 0 {
                (meta >> 8) as u32 - 1
            } else {
                let id = self.intern_hashed(key, hash_bytes(key))?;
                self.small[slot] = (v, ((id as u64 + 1) << 8) | n);
                id
            }
        } else {
            self.intern_hashed(key, hash_bytes(key))?
        };
        self.last = Some(id);
        Some(id)
    }
}

/// Name -> id lookup over a name table, built in parallel (names split into shards by hash).
pub(super) struct NameIndex {
    /// Per shard: a table of its names and their ids in the name table.
    shards: Vec<(Interner, Vec<u32>)>,
}

impl NameIndex {
    const SHARDS: usize = 32;

    pub(super) fn new(names: &[String]) -> Self {
        let hashes: Vec<u64> = names.par_iter().map(|n| hash_bytes(n.as_bytes())).collect();
        let shards = (0..Self::SHARDS)
            .into_par_iter()
            .map(|sh| {
                let mut table = Interner::default();
                let mut ids = Vec::new();
                for (i, &h) in hashes.iter().enumerate() {
                    if (h >> 59) as usize == sh {
                        // Names are distinct, so every one is new in its shard.
                        if table.intern_hashed(names[i].as_bytes(), h).is_some() {
                            ids.push(i as u32);
                        }
                    }
                }
                (table, ids)
            })
            .collect();
        NameIndex { shards }
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<u32> {
        let h = hash_bytes(key);
        let (table, ids) = &self.shards[(h >> 59) as usize];
        table.find(key, h).map(|i| ids[i as usize])
    }
}
