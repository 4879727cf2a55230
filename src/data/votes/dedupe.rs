//! One id space for the keys of several chunk-local interners, as if one interner had read
//! every chunk in order.

use super::interner::{same_key, Interner};

/// The high half of a hash: the tag kept in a table slot.
const TAG: u64 = 0xffff_ffff_0000_0000;
use rayon::prelude::*;

/// Global ids for the keys of several interners (chunks in file order): ids in order of first
/// appearance, as if one interner had seen all rows. Returns per interner its local id -> global
/// id map, and the names by global id.
///
/// Parallel and cache-friendly: keys are split into shards by hash; each shard finds, for each of
/// its keys, the first (chunk, local id) holding it; new keys are then numbered chunk by chunk.
pub(super) fn dedupe(locals: &[&Interner]) -> Option<(Vec<Vec<u32>>, Vec<String>)> {
    let total: usize = locals.iter().map(|l| l.len()).sum();
    let shards: usize = if total < 1 << 14 { 1 } else { 64 };
    let shard_of = |h: u64| ((h >> 40) as usize) & (shards - 1);
    // Local ids of each interner, bucketed by shard (ascending within a bucket).
    let buckets: Vec<Vec<Vec<u32>>> = locals
        .par_iter()
        .map(|l| {
            let mut b = vec![Vec::new(); shards];
            for (i, &h) in l.hashes.iter().enumerate() {
                b[shard_of(h)].push(i as u32);
            }
            b
        })
        .collect();
    // Per shard: for each (interner, local id) in order, the first (interner, local id) with the
    // same key. Entries are listed interner by interner.
    let firsts: Vec<Vec<(u32, u32)>> = (0..shards)
        .into_par_iter()
        .map(|sh| {
            let n: usize = buckets.iter().map(|b| b[sh].len()).sum();
            // An open-addressing table over the first holders of this shard's keys, sized for
            // all of them (no growth); keys are compared where the chunks hold them, never
            // copied. Per slot: `(high 32 bits of the hash) << 32 | (owner index + 1)`.
            let mask = (n * 2).next_power_of_two().max(16) - 1;
            let mut slots = vec![0u64; mask + 1];
            let mut owner: Vec<(u32, u32)> = Vec::new();
            let mut out = Vec::with_capacity(n);
            for (li, l) in locals.iter().enumerate() {
                for &id in &buckets[li][sh] {
                    let (key, h) = (l.key(id as usize), l.hashes[id as usize]);
                    let tag = h & TAG;
                    let mut i = h as usize & mask;
                    let first = loop {
                        let s = slots[i];
                        if s == 0 {
                            if owner.len() >= u32::MAX as usize - 1 {
                                return None;
                            }
                            owner.push((li as u32, id));
                            slots[i] = tag | owner.len() as u64;
                            break (li as u32, id);
                        }
                        if s & TAG == tag {
                            let o = owner[(s as u32 - 1) as usize];
                            if same_key(locals[o.0 as usize].key(o.1 as usize), key) {
                                break o;
                            }
                        }
                        i = (i + 1) & mask;
                    };
                    out.push(first);
                }
            }
            Some(out)
        })
        .collect::<Option<_>>()?;
    // Back to per-interner arrays: first[li][id].
    let mut cursor = vec![0usize; shards];
    let mut starts: Vec<Vec<usize>> = Vec::with_capacity(locals.len());
    for b in &buckets {
        starts.push(cursor.clone());
        for (sh, c) in cursor.iter_mut().enumerate() {
            *c += b[sh].len();
        }
    }
    let first: Vec<Vec<(u32, u32)>> = (0..locals.len())
        .into_par_iter()
        .map(|li| {
            let mut f = vec![(0u32, 0u32); locals[li].len()];
            for sh in 0..shards {
                let ids = &buckets[li][sh];
                let s = starts[li][sh];
                for (k, &id) in ids.iter().enumerate() {
                    f[id as usize] = firsts[sh][s + k];
                }
            }
            f
        })
        .collect();
    // Number the new keys interner by interner, in local id order.
    let news: Vec<usize> = first
        .par_iter()
        .enumerate()
        .map(|(li, f)| {
            f.iter()
                .enumerate()
                .filter(|&(id, &o)| o == (li as u32, id as u32))
                .count()
        })
        .collect();
    let unique: usize = news.iter().sum();
    if unique >= u32::MAX as usize {
        return None;
    }
    let mut base = Vec::with_capacity(locals.len());
    let mut acc = 0usize;
    for n in &news {
        base.push(acc);
        acc += n;
    }
    let own: Vec<Vec<u32>> = first
        .par_iter()
        .enumerate()
        .map(|(li, f)| {
            let mut next = base[li] as u32;
            f.iter()
                .enumerate()
                .map(|(id, &o)| {
                    if o == (li as u32, id as u32) {
                        next += 1;
                        next - 1
                    } else {
                        u32::MAX
                    }
                })
                .collect()
        })
        .collect();
    let maps: Vec<Vec<u32>> = first
        .par_iter()
        .zip(own.par_iter())
        .map(|(f, o)| {
            f.iter()
                .zip(o)
                .map(|(&(l0, i0), &g)| {
                    if g != u32::MAX {
                        g
                    } else {
                        own[l0 as usize][i0 as usize]
                    }
                })
                .collect()
        })
        .collect();
    let mut names = vec![String::new(); unique];
    {
        let mut rest: &mut [String] = &mut names;
        let mut parts = Vec::with_capacity(locals.len());
        for n in &news {
            let (a, b) = rest.split_at_mut(*n);
            parts.push(a);
            rest = b;
        }
        parts.into_par_iter().enumerate().for_each(|(li, out)| {
            let l = locals[li];
            let mut k = 0;
            for (id, &g) in own[li].iter().enumerate() {
                if g != u32::MAX {
                    out[k] = String::from_utf8_lossy(l.key(id)).into_owned();
                    k += 1;
                }
            }
        });
    }
    Some((maps, names))
}
