//! Activation memory planning from tensor lifetimes (DESIGN.md decision 6).
//!
//! Each request is a tensor with a size and a lifetime `[first, last]` in *stages*
//! (nodes of one stage run concurrently, so two tensors may share bytes only when one's
//! last stage comes strictly before the other's first). Requests are placed first-fit,
//! in order of their first stage, into chunks of at most `chunk_cap` bytes (a chunk
//! becomes one device buffer); a range is freed after its last stage. The barrier plan
//! then sees the reuse as write-after-read hazards on real memory and orders it.

use std::collections::HashMap;

use crate::graph::TensorId;
use crate::{Error, Result};

/// One tensor to place.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub id: TensorId,
    pub size: u64,
    /// First and last stage that touches the tensor (inclusive).
    pub first: usize,
    pub last: usize,
}

/// Where a tensor lives: chunk index and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub chunk: usize,
    pub offset: u64,
}

/// The plan: size of each chunk and the placement of every request.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub chunks: Vec<u64>,
    pub places: HashMap<TensorId, Placement>,
}

/// Plans `reqs` (see the module docs). Offsets are multiples of `align`.
pub fn plan(reqs: &[Request], align: u64, chunk_cap: u64) -> Result<Plan> {
    let align = align.max(1);
    let mut order: Vec<&Request> = reqs.iter().collect();
    order.sort_by_key(|r| (r.first, std::cmp::Reverse(r.size)));
    // Per chunk: live ranges (offset, end, last stage).
    let mut live: Vec<Vec<(u64, u64, usize)>> = Vec::new();
    let mut out = Plan::default();
    for r in order {
        let size = r.size.div_ceil(align) * align;
        if size > chunk_cap {
            return Err(Error::OutOfDeviceMemory(format!(
                "an activation needs {size} bytes, more than one buffer can hold ({chunk_cap})"
            )));
        }
        let mut placed = None;
        for (c, ranges) in live.iter_mut().enumerate() {
            ranges.retain(|&(_, _, last)| last >= r.first);
            ranges.sort_unstable();
            // First gap that fits.
            let mut at = 0;
            for &(o, e, _) in ranges.iter() {
                if o >= at + size {
                    break;
                }
                at = at.max(e);
            }
            if at + size <= chunk_cap {
                ranges.push((at, at + size, r.last));
                out.chunks[c] = out.chunks[c].max(at + size);
                placed = Some(Placement {
                    chunk: c,
                    offset: at,
                });
                break;
            }
        }
        let p = match placed {
            Some(p) => p,
            None => {
                live.push(vec![(0, size, r.last)]);
                out.chunks.push(size);
                Placement {
                    chunk: live.len() - 1,
                    offset: 0,
                }
            }
        };
        out.places.insert(r.id, p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(i: u32, size: u64, first: usize, last: usize) -> Request {
        Request {
            id: TensorId(i),
            size,
            first,
            last,
        }
    }

    /// No two requests with overlapping lifetimes overlap in memory.
    fn check(reqs: &[Request], p: &Plan) {
        for a in reqs {
            for b in reqs {
                if a.id == b.id || a.last < b.first || b.last < a.first {
                    continue;
                }
                let (pa, pb) = (p.places[&a.id], p.places[&b.id]);
                if pa.chunk == pb.chunk {
                    assert!(
                        pa.offset + a.size <= pb.offset || pb.offset + b.size <= pa.offset,
                        "{a:?} and {b:?} overlap at {pa:?} / {pb:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn chain_reuses_memory() {
        // A chain: each tensor read by the next stage only.
        let reqs: Vec<Request> = (0..10)
            .map(|i| req(i, 1000, i as usize, i as usize + 1))
            .collect();
        let p = plan(&reqs, 256, 1 << 20).unwrap();
        check(&reqs, &p);
        assert_eq!(p.chunks.len(), 1);
        assert!(p.chunks[0] <= 3 * 1024, "peak {}", p.chunks[0]);
    }

    #[test]
    fn same_stage_never_shares() {
        let reqs = vec![
            req(0, 100, 3, 3),
            req(1, 100, 3, 3),
            req(2, 100, 2, 3),
            req(3, 100, 4, 4),
        ];
        let p = plan(&reqs, 16, 1 << 20).unwrap();
        check(&reqs, &p);
    }

    #[test]
    fn random_lifetimes_and_chunks() {
        let mut s = 12345u64;
        let mut rnd = |n: u64| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 33) % n
        };
        let reqs: Vec<Request> = (0..300)
            .map(|i| {
                let first = rnd(100) as usize;
                req(i, 1 + rnd(5000), first, first + rnd(10) as usize)
            })
            .collect();
        let p = plan(&reqs, 64, 20_000).unwrap();
        check(&reqs, &p);
        assert!(p.chunks.iter().all(|&c| c <= 20_000));
        let sum: u64 = reqs.iter().map(|r| r.size).sum();
        assert!(p.chunks.iter().sum::<u64>() < sum);
        assert!(plan(&[req(0, 30_000, 0, 0)], 64, 20_000).is_err());
    }
}
