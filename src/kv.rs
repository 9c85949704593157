//! The KV cache's bookkeeping: which cells hold which sequence's tokens.
//!
//! The cache tensors themselves live on the backends (`State` tensors of the graph, one K
//! and one V per layer, `n_cells` rows each); this module decides, per batch, the
//! position of every token (for RoPE), the cell its K/V row goes to, and the span of cells
//! it attends (graph inputs `inp_pos`, `inp_kv_cell`, `inp_kv_span`: model::build).
//!
//! Invariants:
//! - The cells are split into `n_seq` equal, contiguous slots, one per sequence (as
//!   llama-server's `-np N -c CTX` gives each slot CTX/N cells). A sequence's tokens sit at
//!   `base + position`, so a token attends exactly the cells `base ..= base + position`
//!   of its own sequence and never another sequence's: batches may mix sequences.
//! - `plan` changes nothing; `commit` (after the forward pass succeeded) advances the
//!   lengths, so a failed pass leaves the cache as it was.

use crate::{Error, Result};

/// Index of a sequence, `0..n_seq`.
pub type SeqId = usize;

/// One sequence's slot of cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    base: usize,
    len: usize,
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct KvCache {
    cap: usize,
    slots: Vec<Slot>,
}

/// The graph inputs for one batch, and the lengths to commit after it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchCells {
    /// Position of each token in its sequence.
    pub pos: Vec<i32>,
    /// Cache row of each token's K/V.
    pub cells: Vec<i32>,
    /// (first, last) cell each token attends, flattened.
    pub spans: Vec<i32>,
    new_len: Vec<(SeqId, usize)>,
}

/// A move of cache rows within a slot that a context shift needs (`Session::shift_seq`):
/// rows `from..from + rows` go to `to..to + rows` (`to < from`), their positions lowered
/// by `discard`, so K is re-roped by `-discard` (the K-shift graph, `model::build`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowShift {
    pub from: usize,
    pub to: usize,
    pub rows: usize,
    pub discard: usize,
}

/// A copy of cache rows between slots that backends must perform (`Backend::copy_rows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowCopy {
    pub from: usize,
    pub to: usize,
    pub rows: usize,
}

impl KvCache {
    /// `n_cells` cells shared evenly by `n_seq` sequences (at least one cell each).
    pub fn new(n_cells: usize, n_seq: usize) -> Result<KvCache> {
        if n_seq == 0 || n_cells < n_seq {
            return Err(Error::Usage(format!(
                "a KV cache of {n_cells} cells cannot hold {n_seq} sequences (need -c >= -np >= 1)"
            )));
        }
        let cap = n_cells / n_seq;
        Ok(KvCache {
            cap,
            slots: (0..n_seq)
                .map(|s| Slot {
                    base: s * cap,
                    len: 0,
                })
                .collect(),
        })
    }

    /// Number of sequences.
    pub fn n_seq(&self) -> usize {
        self.slots.len()
    }

    /// Cells each sequence can hold (its context length).
    pub fn seq_capacity(&self) -> usize {
        self.cap
    }

    /// Tokens cached for `seq`.
    pub fn len(&self, seq: SeqId) -> usize {
        self.slots.get(seq).map_or(0, |s| s.len)
    }

    /// Whether no sequence holds a token.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.len == 0)
    }

    fn slot(&self, seq: SeqId) -> Result<Slot> {
        self.slots.get(seq).copied().ok_or_else(|| {
            Error::Usage(format!(
                "sequence {seq} does not exist ({} sequences: 0..{})",
                self.slots.len(),
                self.slots.len()
            ))
        })
    }

    /// Forgets `seq`'s tokens.
    pub fn clear(&mut self, seq: SeqId) -> Result<()> {
        self.truncate(seq, 0)
    }

    /// Forgets every sequence.
    pub fn clear_all(&mut self) {
        for s in &mut self.slots {
            s.len = 0;
        }
    }

    /// Keeps `seq`'s first `len` tokens (llama.cpp's `seq_rm(seq, len, -1)`): the next
    /// token of the sequence goes to position `len`.
    pub fn truncate(&mut self, seq: SeqId, len: usize) -> Result<()> {
        let s = self.slot(seq)?;
        self.slots[seq].len = s.len.min(len);
        Ok(())
    }

    /// Makes `dst` a copy of `src` (its tokens, positions and cache rows): the row copy
    /// every backend must perform, and `dst`'s new length.
    pub fn copy(&mut self, src: SeqId, dst: SeqId) -> Result<Option<RowCopy>> {
        let (s, d) = (self.slot(src)?, self.slot(dst)?);
        self.slots[dst].len = s.len;
        Ok((src != dst && s.len > 0).then_some(RowCopy {
            from: s.base,
            to: d.base,
            rows: s.len,
        }))
    }

    /// The rows a context shift of `seq` moves: its first `keep` tokens stay, the next
    /// `discard` are dropped and the rest move down by `discard` cells and positions
    /// (llama.cpp's `seq_rm(seq, keep, keep + discard)` + `seq_add(seq, keep + discard,
    /// -1, -discard)`). `None` when nothing moves (the dropped tokens were the last).
    /// Changes nothing: [`KvCache::commit_shift`] records it once the rows moved.
    pub fn plan_shift(&self, seq: SeqId, keep: usize, discard: usize) -> Result<Option<RowShift>> {
        let s = self.slot(seq)?;
        if keep + discard > s.len {
            return Err(Error::Usage(format!(
                "context shift of sequence {seq}: keeping {keep} and dropping {discard} tokens \
                 needs at least {} cached, it has {}",
                keep + discard,
                s.len
            )));
        }
        let rows = s.len - keep - discard;
        Ok((rows > 0 && discard > 0).then_some(RowShift {
            from: s.base + keep + discard,
            to: s.base + keep,
            rows,
            discard,
        }))
    }

    /// Records a context shift of `seq` planned by [`KvCache::plan_shift`] as done.
    pub fn commit_shift(&mut self, seq: SeqId, keep: usize, discard: usize) -> Result<()> {
        let s = self.slot(seq)?;
        if keep + discard > s.len {
            return Err(Error::Usage(format!(
                "context shift of sequence {seq}: {} tokens cached, fewer than {keep} + {discard}",
                s.len
            )));
        }
        self.slots[seq].len = s.len - discard;
        Ok(())
    }

    /// The inputs for a batch whose token `i` belongs to sequence `seqs[i]` (tokens of one
    /// sequence in order), or `ContextFull` naming the sequence that would overflow.
    pub fn plan(&self, seqs: &[SeqId]) -> Result<BatchCells> {
        let mut len: Vec<usize> = self.slots.iter().map(|s| s.len).collect();
        let mut out = BatchCells {
            pos: Vec::with_capacity(seqs.len()),
            cells: Vec::with_capacity(seqs.len()),
            spans: Vec::with_capacity(2 * seqs.len()),
            new_len: Vec::new(),
        };
        for &seq in seqs {
            let s = self.slot(seq)?;
            let p = len[seq];
            if p >= self.cap {
                let added = seqs.iter().filter(|&&x| x == seq).count();
                return Err(Error::ContextFull(format!(
                    "sequence {seq}: {} cached + {added} new tokens exceed its context of {} \
                     cells (raise -c{})",
                    self.slots[seq].len,
                    self.cap,
                    if self.slots.len() > 1 {
                        " or lower -np"
                    } else {
                        ""
                    }
                )));
            }
            len[seq] = p + 1;
            let cell = (s.base + p) as i32;
            out.pos.push(p as i32);
            out.cells.push(cell);
            out.spans.extend([s.base as i32, cell]);
        }
        out.new_len = len
            .into_iter()
            .enumerate()
            .filter(|&(i, l)| l != self.slots[i].len)
            .collect();
        Ok(out)
    }

    /// Records the batch `plan` described as done.
    pub fn commit(&mut self, b: &BatchCells) {
        for &(seq, l) in &b.new_len {
            self.slots[seq].len = l;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_get_their_own_cells_and_spans() {
        let mut kv = KvCache::new(16, 2).unwrap();
        let b = kv.plan(&[0, 0, 1]).unwrap();
        assert_eq!(b.pos, [0, 1, 0]);
        assert_eq!(b.cells, [0, 1, 8]);
        assert_eq!(b.spans, [0, 0, 0, 1, 8, 8]);
        kv.commit(&b);
        assert_eq!((kv.len(0), kv.len(1)), (2, 1));
        let b = kv.plan(&[1, 0]).unwrap();
        assert_eq!((b.pos, b.cells), (vec![1, 2], vec![9, 2]));
        // Capacity is per sequence, and a refused batch changes nothing.
        assert!(matches!(kv.plan(&[1; 8]), Err(Error::ContextFull(_))));
        assert_eq!(kv.len(1), 1);
        kv.truncate(0, 1).unwrap();
        assert_eq!(kv.len(0), 1);
        assert_eq!(
            kv.copy(0, 1).unwrap(),
            Some(RowCopy {
                from: 0,
                to: 8,
                rows: 1
            })
        );
        assert_eq!(kv.len(1), 1);
        assert!(kv.plan(&[2]).is_err());
        assert!(KvCache::new(1, 2).is_err());
    }

    #[test]
    fn a_context_shift_moves_the_tail_down() {
        let mut kv = KvCache::new(16, 2).unwrap();
        let b = kv.plan(&[1; 7]).unwrap();
        kv.commit(&b);
        assert_eq!(
            kv.plan_shift(1, 2, 3).unwrap(),
            Some(RowShift {
                from: 13,
                to: 10,
                rows: 2,
                discard: 3
            })
        );
        // Planning changes nothing; too many tokens is an error.
        assert_eq!(kv.len(1), 7);
        assert!(kv.plan_shift(1, 5, 3).is_err());
        assert!(kv.plan_shift(2, 0, 0).is_err());
        // Dropping the last tokens moves nothing.
        assert_eq!(kv.plan_shift(1, 4, 3).unwrap(), None);
        kv.commit_shift(1, 2, 3).unwrap();
        assert_eq!(kv.len(1), 4);
        let b = kv.plan(&[1]).unwrap();
        assert_eq!((b.pos, b.cells), (vec![4], vec![12]));
    }
}
