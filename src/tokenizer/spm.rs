//! SentencePiece-style tokenization (llama.cpp's "SPM" vocabulary type).
//!
//! The input (spaces already replaced by `▁`) starts as one symbol per UTF-8
//! character. Adjacent pairs whose concatenation is a vocabulary token are queued by
//! that token's score; the best pair (highest score, leftmost on ties) is merged and
//! its new neighbours are queued, until nothing merges. Queue entries made stale by an
//! earlier merge are recognised by their byte length and dropped. Final symbols that
//! are not tokens fall back to one `<0xXX>` token per byte.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::{Error, Result};

pub(super) struct Spm {
    scores: Vec<f32>,
}

/// A symbol: a byte range of the text, linked to its neighbours (-1 = none).
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: isize,
    next: isize,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}

impl Spm {
    pub(super) fn new(scores: Vec<f32>) -> Self {
        Spm { scores }
    }

    /// Tokenizes already-escaped `text`, appending ids to `out`.
    pub(super) fn tokenize(
        &self,
        text: &str,
        vocab: &HashMap<String, u32>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let mut syms: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            let len = c.len_utf8();
            syms.push(Symbol {
                start,
                len,
                prev: i as isize - 1,
                next: if start + len == text.len() {
                    -1
                } else {
                    i as isize + 1
                },
            });
        }
        if syms.is_empty() {
            return Ok(());
        }

        let mut queue = BinaryHeap::new();
        let try_add = |syms: &[Symbol], queue: &mut BinaryHeap<Bigram>, l: isize, r: isize| {
            if l < 0 || r < 0 {
                return;
            }
            let (a, b) = (syms[l as usize], syms[r as usize]);
            let piece = &text[a.start..b.start + b.len];
            if let Some(&id) = vocab.get(piece) {
                queue.push(Bigram {
                    left: l as usize,
                    right: r as usize,
                    score: self.scores[id as usize],
                    len: piece.len(),
                });
            }
        };
        for i in 1..syms.len() {
            try_add(&syms, &mut queue, i as isize - 1, i as isize);
        }

        while let Some(bg) = queue.pop() {
            let (l, r) = (syms[bg.left], syms[bg.right]);
            // Stale entry: one side was merged away or grew since it was queued.
            if l.len == 0 || r.len == 0 || l.len + r.len != bg.len {
                continue;
            }
            syms[bg.left].len += r.len;
            syms[bg.right].len = 0;
            syms[bg.left].next = r.next;
            if r.next >= 0 {
                syms[r.next as usize].prev = bg.left as isize;
            }
            let left = syms[bg.left];
            try_add(&syms, &mut queue, left.prev, bg.left as isize);
            try_add(&syms, &mut queue, bg.left as isize, left.next);
        }

        let mut i = 0isize;
        while i >= 0 {
            let s = syms[i as usize];
            let piece = &text[s.start..s.start + s.len];
            match vocab.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        out.push(byte_token(vocab, b)?);
                    }
                }
            }
            i = s.next;
        }
        Ok(())
    }
}

/// The token for one raw byte: `<0xAB>`, or else the byte itself as a token.
fn byte_token(vocab: &HashMap<String, u32>, b: u8) -> Result<u32> {
    if let Some(&id) = vocab.get(&format!("<0x{b:02X}>")) {
        return Ok(id);
    }
    if b.is_ascii() {
        if let Some(&id) = vocab.get(&(b as char).to_string()) {
            return Ok(id);
        }
    }
    Err(Error::Tokenizer(format!(
        "SPM vocabulary has no byte-fallback token <0x{b:02X}>"
    )))
}
