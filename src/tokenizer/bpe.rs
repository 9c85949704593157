//! Byte-level BPE (llama.cpp's "BPE" vocabulary type, `tokenizer.ggml.model = gpt2`).
//!
//! Text is split by the pre-tokenizer regexes llama.cpp uses for the vocabulary's
//! `tokenizer.ggml.pre` (each regex splits the pieces of the previous one, keeping
//! both matches and the text between them), every byte of a piece is mapped to its
//! GPT-2 "byte-level" character, and ranked merges are applied per piece. The
//! `tokenizers` crate does the splitting and merging, built in memory from the GGUF
//! vocabulary; decoding maps the byte-level characters back to bytes here.

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use crate::{Error, Result};

/// The pre-tokenizer families llama.cpp distinguishes (by regex set and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PreType {
    Default,
    Gpt2,
    /// Llama 3 style; `true` for the names where llama.cpp also sets
    /// `ignore_merges` and `add_bos` (llama3, llama-bpe, ...), false for dbrx/smaug.
    Llama3(bool),
    ChatGlm4,
    Qwen2,
    Smollm,
    Falcon,
}

const GPT2_RE: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_RE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_RE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl PreType {
    /// Maps `tokenizer.ggml.pre` to a family; a missing name means `default`, as in
    /// llama.cpp (which warns that quality may suffer).
    pub(super) fn from_name(name: Option<&str>) -> Result<Self> {
        let Some(name) = name else {
            log::warn!("GGUF has no tokenizer.ggml.pre; using the `default` pre-tokenizer");
            return Ok(PreType::Default);
        };
        Ok(match name {
            "" | "default" => PreType::Default,
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais"
            | "trillion" | "granite-docling" | "exaone4" => PreType::Gpt2,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" => PreType::Llama3(true),
            "dbrx" | "smaug-bpe" => PreType::Llama3(false),
            "glm4" | "chatglm-bpe" => PreType::ChatGlm4,
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "stablelm2" | "megrez"
            | "hunyuan" | "solar-open" => PreType::Qwen2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" | "mellum2" => PreType::Smollm,
            "falcon" => PreType::Falcon,
            other => {
                return Err(Error::Tokenizer(format!(
                    "unsupported pre-tokenizer `{other}` (tokenizer.ggml.pre)"
                )))
            }
        })
    }

    /// The split regexes, applied in order.
    fn regexes(self) -> &'static [&'static str] {
        match self {
            PreType::Default => &[
                r"[\p{P}\$\+<=>\^~\|]+",
                GPT2_RE,
                r"\p{N}+",
                r"[0-9][0-9][0-9]",
            ],
            PreType::Gpt2 => &[GPT2_RE],
            PreType::Llama3(_) | PreType::ChatGlm4 => &[LLAMA3_RE],
            PreType::Qwen2 => &[QWEN2_RE],
            PreType::Smollm => &[r"\p{N}", GPT2_RE],
            PreType::Falcon => &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2_RE, r"[0-9][0-9][0-9]"],
        }
    }

    fn ignore_merges(self) -> bool {
        self == PreType::Llama3(true)
    }

    /// llama.cpp's default BOS id for BPE vocabularies (overridden by metadata).
    pub(super) fn default_bos(self) -> Option<u32> {
        match self {
            PreType::ChatGlm4 => None,
            _ => Some(11),
        }
    }

    pub(super) fn default_add_bos(self) -> bool {
        self == PreType::Llama3(true)
    }
}

pub(super) struct Bpe {
    tk: tokenizers::Tokenizer,
}

impl Bpe {
    pub(super) fn new(tokens: &[String], merges: &[String], pre: PreType) -> Result<Self> {
        let err = |what: String| Error::Tokenizer(format!("building BPE ({pre:?}): {what}"));
        let mut vocab = Vocab::default();
        for (i, t) in tokens.iter().enumerate() {
            vocab.entry(t.clone()).or_insert(i as u32);
        }
        // "left right", split at the first space after the first byte (a merge may
        // start with a literal space). The `tokenizers` crate rejects merges whose
        // parts or result are not tokens; such merges could never yield a token.
        let mut pairs = Vec::with_capacity(merges.len());
        for m in merges {
            let Some(pos) = m.bytes().skip(1).position(|c| c == b' ').map(|p| p + 1) else {
                continue;
            };
            let (a, b) = (&m[..pos], &m[pos + 1..]);
            if vocab.contains_key(a)
                && vocab.contains_key(b)
                && vocab.contains_key(&format!("{a}{b}"))
            {
                pairs.push((a.to_string(), b.to_string()));
            }
        }
        let model = BPE::builder()
            .vocab_and_merges(vocab, pairs)
            .ignore_merges(pre.ignore_merges())
            .build()
            .map_err(|e| err(e.to_string()))?;

        let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
        for re in pre.regexes() {
            let split = Split::new(
                SplitPattern::Regex((*re).to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| err(format!("regex {re}: {e}")))?;
            steps.push(split.into());
        }
        steps.push(ByteLevel::new(false, false, false).into());

        let mut tk = tokenizers::Tokenizer::new(model);
        tk.with_pre_tokenizer(Some(Sequence::new(steps)));
        Ok(Bpe { tk })
    }

    pub(super) fn tokenize(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let enc = self
            .tk
            .encode_fast(text, false)
            .map_err(|e| Error::Tokenizer(format!("BPE encode: {e}")))?;
        out.extend_from_slice(enc.get_ids());
        Ok(())
    }
}

/// Inverse of GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes were shifted to U+0100.. in ascending order.
fn unicode_to_byte(c: char) -> Option<u8> {
    let u = c as u32;
    match u {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(u as u8),
        0x100..=0x120 => Some((u - 0x100) as u8), // 0x00..=0x20
        0x121..=0x142 => Some((u - 0x121 + 0x7F) as u8), // 0x7F..=0xA0
        0x143 => Some(0xAD),
        _ => None,
    }
}

/// GPT-2's `bytes_to_unicode`: the character that stands for byte `b`.
#[cfg(test)]
pub(super) fn byte_decode_inverse(b: u8) -> char {
    (0u32..0x200)
        .filter_map(char::from_u32)
        .find(|&c| unicode_to_byte(c) == Some(b))
        .unwrap_or('?')
}

/// Bytes of a byte-level token text. Characters outside the byte alphabet (which a
/// well-formed vocabulary never has) are kept as their own UTF-8.
pub(super) fn byte_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match unicode_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte alphabet round-trips: 256 distinct characters, each back to its byte.
    #[test]
    fn byte_alphabet_is_a_bijection() {
        let mut seen = [false; 256];
        let mut count = 0;
        for u in 0u32..0x200 {
            if let Some(b) = char::from_u32(u).and_then(unicode_to_byte) {
                assert!(!seen[b as usize], "byte {b:#x} produced twice");
                seen[b as usize] = true;
                count += 1;
            }
        }
        assert_eq!(count, 256);
        assert_eq!(unicode_to_byte('Ġ'), Some(b' '));
        assert_eq!(unicode_to_byte('Ċ'), Some(b'\n'));
    }
}
