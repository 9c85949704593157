//! The vocabulary `gen-model` embeds: a byte-level BPE (GPT-2 byte mapping, 256 byte
//! tokens) with merges learned deterministically from a short built-in English text,
//! one special token `<|endoftext|>` (BOS and EOS), and unused `[PAD{i}]` tokens up to
//! the requested size. llama.cpp loads it as `tokenizer.ggml.model = gpt2`.

use std::collections::HashMap;

const CORPUS: &str =
    "The capital of France is Paris. The quick brown fox jumps over the lazy dog. \
In the beginning there was a small model that ran on every graphics card, and the people who \
used it every day wanted it to be fast and correct. Once upon a time, in a land far away, there \
lived a king who loved numbers and the stars. It is the best of times and the worst of times; \
the question is what we do with the time that is given to us. Hello world, hello again, and \
thank you for reading this text about matrices, tokens, layers and attention.";

/// The vocabulary arrays for GGUF.
pub struct Vocab {
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub merges: Vec<String>,
    pub bos: u32,
    pub eos: u32,
}

/// GPT-2's reversible byte → printable char mapping.
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).expect("valid char")
}

/// Builds a vocabulary of exactly `n_vocab` tokens (at least 512).
pub fn vocab(n_vocab: usize) -> Vocab {
    let n_vocab = n_vocab.max(512);
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let mut types = vec![1i32; 256];
    // Words with their leading space, as symbol sequences.
    let mut words: HashMap<Vec<String>, usize> = HashMap::new();
    for (i, w) in CORPUS.split(' ').enumerate() {
        let text = if i == 0 {
            w.to_string()
        } else {
            format!(" {w}")
        };
        let syms: Vec<String> = text.bytes().map(|b| byte_char(b).to_string()).collect();
        *words.entry(syms).or_default() += 1;
    }
    let max_merges = (n_vocab - 256 - 1).min(400);
    let mut merges = Vec::new();
    while merges.len() < max_merges {
        let mut counts: HashMap<(String, String), usize> = HashMap::new();
        for (w, &c) in &words {
            for p in w.windows(2) {
                *counts.entry((p[0].clone(), p[1].clone())).or_default() += c;
            }
        }
        // Most frequent pair; ties broken by the pair itself, so the result is deterministic.
        let Some(((a, b), c)) = counts
            .into_iter()
            .max_by(|x, y| x.1.cmp(&y.1).then_with(|| y.0.cmp(&x.0)))
        else {
            break;
        };
        if c < 2 {
            break;
        }
        let joined = format!("{a}{b}");
        merges.push(format!("{a} {b}"));
        tokens.push(joined.clone());
        types.push(1);
        words = words
            .into_iter()
            .map(|(w, c)| {
                let mut out = Vec::with_capacity(w.len());
                let mut i = 0;
                while i < w.len() {
                    if i + 1 < w.len() && w[i] == a && w[i + 1] == b {
                        out.push(joined.clone());
                        i += 2;
                    } else {
                        out.push(w[i].clone());
                        i += 1;
                    }
                }
                (out, c)
            })
            .fold(HashMap::new(), |mut m, (w, c)| {
                *m.entry(w).or_default() += c;
                m
            });
    }
    let eos = tokens.len() as u32;
    tokens.push("<|endoftext|>".into());
    types.push(3);
    let mut i = 0;
    while tokens.len() < n_vocab {
        tokens.push(format!("[PAD{i}]"));
        types.push(5);
        i += 1;
    }
    Vocab {
        tokens,
        types,
        merges,
        bos: eos,
        eos,
    }
}
