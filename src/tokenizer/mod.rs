//! Tokenizers built from GGUF metadata, producing the same token ids as llama.cpp.
//!
//! Two vocabulary types are supported, chosen by `tokenizer.ggml.model`:
//! - `llama`: SentencePiece-style ([`spm`]): scored pieces merged greedily by score,
//!   `▁` for spaces, an optional leading space, `<0xXX>` byte fallback;
//! - `gpt2`: byte-level BPE ([`bpe`]) with ranked merges and a regex pre-tokenizer
//!   picked by `tokenizer.ggml.pre`.
//!
//! Special tokens (control, user-defined, unknown) are split out of the input before
//! the model runs, the way llama.cpp's `tokenizer_st_partition` does: user-defined
//! tokens always, control/unknown tokens only when `parse_special` is true.
//!
//! Invariants: every id handed out is `< n_vocab()`; `decode` never fails (invalid
//! UTF-8 becomes U+FFFD); control and unknown tokens decode to nothing; decoding is
//! lossless for byte-level BPE and for SPM (no `clean_spaces` post-processing).

mod bpe;
mod spm;
mod stream;

pub use stream::StreamDecoder;

use std::collections::{HashMap, HashSet};

use crate::{Error, Result};

/// Everything the tokenizer needs, as stored in GGUF metadata (`tokenizer.ggml.*`).
/// `None` means "key absent": the llama.cpp default for the model type applies.
#[derive(Debug, Clone, Default)]
pub struct VocabData {
    /// `tokenizer.ggml.model`: `llama` (SPM) or `gpt2` (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: pre-tokenizer name for BPE (ignored for SPM).
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub scores: Option<Vec<f32>>,
    /// llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Option<Vec<i32>>,
    /// BPE merges, `"left right"`, in rank order.
    pub merges: Option<Vec<String>>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub pad: Option<u32>,
    pub unk: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
}

/// Token attributes, from `token_type` (llama.cpp's `llama_token_attr`, as bits).
mod attr {
    pub const UNDEFINED: u8 = 0;
    pub const UNKNOWN: u8 = 1 << 0;
    pub const UNUSED: u8 = 1 << 1;
    pub const NORMAL: u8 = 1 << 2;
    pub const CONTROL: u8 = 1 << 3;
    pub const USER_DEFINED: u8 = 1 << 4;
    pub const BYTE: u8 = 1 << 5;

    pub fn from_type(t: i32) -> u8 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

/// Texts llama.cpp treats as end-of-turn / end-of-generation markers when present.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

enum Model {
    Spm(spm::Spm),
    Bpe(Box<bpe::Bpe>),
}

/// A tokenizer for one vocabulary. Cheap to share (`&self` everywhere).
pub struct Tokenizer {
    model: Model,
    tokens: Vec<String>,
    attrs: Vec<u8>,
    token_to_id: HashMap<String, u32>,
    /// Bytes each token decodes to when special tokens are not rendered.
    pieces: Vec<Vec<u8>>,
    /// Control/user-defined/unknown tokens, longest text first (partition order).
    special_order: Vec<u32>,
    eog: HashSet<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    pad: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
}

/// A piece of input after special-token partitioning.
enum Fragment {
    Text(usize, usize),
    Token(u32),
}

impl Tokenizer {
    /// Builds a tokenizer; fails with [`Error::Tokenizer`] naming an unknown model or
    /// pre-tokenizer, or inconsistent metadata (array lengths, ids out of range).
    pub fn new(v: VocabData) -> Result<Self> {
        let n = v.tokens.len();
        if n == 0 {
            return Err(Error::Tokenizer("vocabulary has no tokens".into()));
        }
        if n > u32::MAX as usize {
            return Err(Error::Tokenizer(format!(
                "vocabulary too large: {n} tokens"
            )));
        }
        let check_len = |what: &str, len: usize| {
            if len < n {
                Err(Error::Tokenizer(format!(
                    "tokenizer.ggml.{what} has {len} entries for {n} tokens"
                )))
            } else {
                Ok(())
            }
        };
        if let Some(s) = &v.scores {
            check_len("scores", s.len())?;
        }
        if let Some(t) = &v.token_types {
            check_len("token_type", t.len())?;
        }

        // llama.cpp renames empty tokens so they can never match (an empty special
        // token would otherwise match everywhere).
        let tokens: Vec<String> = v
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if t.is_empty() {
                    format!("[EMPTY_{i}]")
                } else {
                    t.clone()
                }
            })
            .collect();
        let mut token_to_id = HashMap::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            token_to_id.entry(t.clone()).or_insert(i as u32);
        }
        let mut attrs: Vec<u8> = match &v.token_types {
            Some(tt) => tt[..n].iter().map(|&t| attr::from_type(t)).collect(),
            None => vec![attr::NORMAL; n],
        };

        // Model-type defaults, as llama.cpp's vocab loader sets them.
        let (model, def_bos, def_eos, def_unk, def_add_bos, def_space_prefix) =
            match v.model.as_str() {
                "llama" => {
                    let scores = v.scores.clone().unwrap_or_else(|| vec![0.0; n]);
                    let spm = spm::Spm::new(scores[..n].to_vec());
                    (Model::Spm(spm), Some(1), Some(2), Some(0), true, true)
                }
                "gpt2" => {
                    let pre = bpe::PreType::from_name(v.pre.as_deref())?;
                    let merges = v.merges.as_deref().ok_or_else(|| {
                        Error::Tokenizer("gpt2 vocabulary without tokenizer.ggml.merges".into())
                    })?;
                    let b = bpe::Bpe::new(&tokens, merges, pre)?;
                    let (def_bos, add_bos) = (pre.default_bos(), pre.default_add_bos());
                    (
                        Model::Bpe(Box::new(b)),
                        def_bos,
                        Some(11),
                        None,
                        add_bos,
                        false,
                    )
                }
                other => {
                    return Err(Error::Tokenizer(format!(
                        "unsupported tokenizer model `{other}` (supported: llama, gpt2)"
                    )))
                }
            };
        // Defaults outside the vocabulary are disabled; an explicit id outside it is
        // ignored with a warning (the default stays), as llama.cpp does.
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let pick = |key: &str, id: Option<u32>, default: Option<u32>| match id {
            Some(i) if (i as usize) >= n => {
                log::warn!("tokenizer.ggml.{key} = {i} is out of range for {n} tokens; ignored");
                in_range(default)
            }
            Some(i) => Some(i),
            None => in_range(default),
        };
        let bos = pick("bos_token_id", v.bos, def_bos);
        let eos = pick("eos_token_id", v.eos, def_eos);
        let pad = pick("padding_token_id", v.pad, None);
        let unk = pick("unknown_token_id", v.unk, def_unk);
        let mut eot = pick("eot_token_id", v.eot, None);
        let add_bos = v.add_bos.unwrap_or(def_add_bos);
        let add_eos = v.add_eos.unwrap_or(false);
        let add_space_prefix = v.add_space_prefix.unwrap_or(def_space_prefix);
        if add_bos && bos.is_none() {
            return Err(Error::Tokenizer(
                "add_bos_token is true but the vocabulary has no BOS token".into(),
            ));
        }
        if add_eos && eos.is_none() {
            return Err(Error::Tokenizer(
                "add_eos_token is true but the vocabulary has no EOS token".into(),
            ));
        }

        // End-of-generation set: EOS, EOT and the marker texts llama.cpp recognizes
        // (which it forces to control type, so they are never printed).
        if eot.is_none() {
            eot = EOT_TEXTS.iter().find_map(|t| token_to_id.get(*t).copied());
        }
        let mut eog: HashSet<u32> = HashSet::new();
        for t in EOG_TEXTS {
            if let Some(&id) = token_to_id.get(*t) {
                eog.insert(id);
            }
        }
        for &id in &eog {
            attrs[id as usize] |= attr::CONTROL;
        }
        if let Some(id) = eot {
            if EOT_TEXTS.contains(&tokens[id as usize].as_str()) {
                attrs[id as usize] |= attr::CONTROL;
            }
        }
        eog.extend(eos);
        eog.extend(eot);

        let mut special_order: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                attrs[i as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        special_order.sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].len()));

        let mut tok = Tokenizer {
            model,
            tokens,
            attrs,
            token_to_id,
            pieces: Vec::new(),
            special_order,
            eog,
            bos,
            eos,
            eot,
            pad,
            unk,
            add_bos,
            add_eos,
            add_space_prefix,
        };
        tok.pieces = (0..n as u32).map(|i| tok.render(i, false)).collect();
        Ok(tok)
    }

    /// Reads the `tokenizer.ggml.*` keys of a GGUF file and builds the tokenizer.
    pub fn from_gguf(f: &crate::gguf::GgufFile) -> Result<Self> {
        Self::new(vocab_from_gguf(f)?)
    }

    /// Encodes `text`. `add_special` adds BOS (and EOS) when the vocabulary asks for
    /// it; `parse_special` lets control-token text such as `<|im_start|>` map to its id.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let frags = self.partition(text, parse_special);
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match &self.model {
            Model::Spm(spm) => {
                let mut prev_special = true;
                let mut buf = String::new();
                for f in &frags {
                    match *f {
                        Fragment::Text(a, b) => {
                            buf.clear();
                            if self.add_space_prefix && prev_special {
                                buf.push('▁');
                            }
                            for c in text[a..b].chars() {
                                buf.push(if c == ' ' { '▁' } else { c });
                            }
                            spm.tokenize(&buf, &self.token_to_id, &mut out)?;
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            Model::Bpe(bpe) => {
                for f in &frags {
                    match *f {
                        Fragment::Text(a, b) => bpe.tokenize(&text[a..b], &mut out)?,
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// Splits `text` around special-token occurrences, longest special token first.
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut frags = vec![Fragment::Text(0, text.len())];
        for &id in &self.special_order {
            let a = self.attrs[id as usize];
            if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let pat = self.tokens[id as usize].as_str();
            if !text.contains(pat) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                let Fragment::Text(mut start, end) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(pos) = text[start..end].find(pat) {
                    if pos > 0 {
                        next.push(Fragment::Text(start, start + pos));
                    }
                    next.push(Fragment::Token(id));
                    start += pos + pat.len();
                }
                if start < end {
                    next.push(Fragment::Text(start, end));
                }
            }
            frags = next;
        }
        frags
    }

    /// Bytes of one token as llama.cpp's `token_to_piece` renders it; with
    /// `special == false`, control and unknown tokens render as nothing.
    fn render(&self, id: u32, special: bool) -> Vec<u8> {
        let Some(text) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        let a = self.attrs[id as usize];
        if a & (attr::CONTROL | attr::UNKNOWN) != 0 && !special {
            return Vec::new();
        }
        if a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED) != 0 {
            return text.as_bytes().to_vec();
        }
        if a & attr::NORMAL != 0 {
            return match &self.model {
                Model::Spm(_) => text.replace('▁', " ").into_bytes(),
                Model::Bpe(_) => bpe::byte_decode(text),
            };
        }
        if a & attr::BYTE != 0 {
            if let Some(b) = parse_byte_token(text) {
                return vec![b];
            }
        }
        Vec::new()
    }

    /// Raw bytes of one token, for streaming output (control tokens give nothing,
    /// SPM `▁` becomes a space, no leading-space stripping).
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        self.pieces.get(id as usize).cloned().unwrap_or_default()
    }

    /// Like [`Self::token_bytes`], but control tokens render as their text when
    /// `special` is true (llama.cpp's `token_to_piece(.., special)`).
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        if special {
            self.render(id, true)
        } else {
            self.token_bytes(id)
        }
    }

    /// The vocabulary entry of `id` as stored in the GGUF file.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Id of the token whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// Decodes ids to text. Control tokens print nothing; with SPM's space prefix the
    /// leading space that encoding added is removed again (a leading BOS is skipped
    /// first), so `decode(encode(s, ..)) == s`. Invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        let mut ids = ids;
        let mut strip = self.add_space_prefix && matches!(self.model, Model::Spm(_));
        if let (Some(&first), Some(bos)) = (ids.first(), self.bos) {
            if first == bos && self.is_control(bos) {
                ids = &ids[1..];
            }
        }
        for &id in ids {
            let p = self
                .pieces
                .get(id as usize)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if strip {
                bytes.extend_from_slice(p.strip_prefix(b" ").unwrap_or(p));
                strip = false;
            } else {
                bytes.extend_from_slice(p);
            }
        }
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }
    pub fn pad(&self) -> Option<u32> {
        self.pad
    }
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }
    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    /// True for EOS, EOT and the other end-of-generation markers llama.cpp knows.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }
    /// True for control tokens (BOS, EOS, chat markers): never printed by `decode`.
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs
            .get(id as usize)
            .is_some_and(|a| a & attr::CONTROL != 0)
    }
    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }
    /// `"spm"` or `"bpe"`.
    pub fn kind(&self) -> &'static str {
        match self.model {
            Model::Spm(_) => "spm",
            Model::Bpe(_) => "bpe",
        }
    }
}

/// `<0xAB>` -> 0xAB.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Collects the `tokenizer.ggml.*` keys of a GGUF file (absent optional keys stay
/// `None`; present keys of the wrong type are errors naming the key).
pub fn vocab_from_gguf(f: &crate::gguf::GgufFile) -> Result<VocabData> {
    use crate::gguf::GgufFile;
    const P: &str = "tokenizer.ggml.";
    fn opt<'a, T>(
        f: &'a GgufFile,
        key: &str,
        get: impl Fn(&'a GgufFile, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        let key = format!("{P}{key}");
        match f.get(&key) {
            None => Ok(None),
            Some(_) => get(f, &key).map(Some),
        }
    }
    let id = |key: &str| opt(f, key, GgufFile::get_u32);
    let flag = |key: &str| opt(f, key, GgufFile::get_bool);
    Ok(VocabData {
        model: f.get_str(&format!("{P}model"))?.to_string(),
        pre: opt(f, "pre", GgufFile::get_str)?.map(str::to_string),
        tokens: f.get_str_array(&format!("{P}tokens"))?.to_vec(),
        scores: opt(f, "scores", GgufFile::get_f32_array)?,
        token_types: opt(f, "token_type", GgufFile::get_i32_array)?,
        merges: opt(f, "merges", GgufFile::get_str_array)?.map(<[String]>::to_vec),
        bos: id("bos_token_id")?,
        eos: id("eos_token_id")?,
        eot: id("eot_token_id")?,
        pad: id("padding_token_id")?,
        unk: id("unknown_token_id")?,
        add_bos: flag("add_bos_token")?,
        add_eos: flag("add_eos_token")?,
        add_space_prefix: flag("add_space_prefix")?,
    })
}

#[cfg(test)]
mod tests;
