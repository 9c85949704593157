//! Tokenizers against llama.cpp's own test vectors.
//!
//! `tests/fixtures/vocab/ggml-vocab-*.gguf{,.inp,.out}` come from llama.cpp's
//! `models/` folder (MIT): each test string of `.inp` must encode (no BOS, special
//! text not parsed) to the ids on the matching line of `.out`, and decode back to
//! itself. `tests/fixtures/smollm2-tokenize.json` holds ids that llama.cpp's
//! `llama-server /tokenize` returned for the SmolLM2-135M-Instruct GGUF
//! (regenerate with `scripts/smollm2-reference-ids.sh`); that test needs the model
//! file (`scripts/fetch-smollm2.sh`) and is skipped, loudly, without it.

use std::path::{Path, PathBuf};

use vkgraph::gguf::GgufFile;
use vkgraph::tokenizer::{vocab_from_gguf, StreamDecoder, Tokenizer};

const SEP: &str = "\n__ggml_vocab_test__\n";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn load(name: &str) -> Tokenizer {
    let path = fixture(&format!("vocab/ggml-vocab-{name}.gguf"));
    let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&f).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (text, expected ids) pairs of one vocabulary's `.inp`/`.out` files.
fn cases(name: &str) -> Vec<(String, Vec<u32>)> {
    let inp =
        std::fs::read_to_string(fixture(&format!("vocab/ggml-vocab-{name}.gguf.inp"))).unwrap();
    let out =
        std::fs::read_to_string(fixture(&format!("vocab/ggml-vocab-{name}.gguf.out"))).unwrap();
    // Every string, the last included, is followed by the separator.
    let body = inp.strip_suffix(SEP).expect(".inp ends with the separator");
    let texts: Vec<&str> = body.split(SEP).collect();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        texts.len(),
        lines.len(),
        "{name}: .inp and .out disagree on the case count"
    );
    texts
        .iter()
        .zip(lines)
        .map(|(t, l)| {
            let ids = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (t.to_string(), ids)
        })
        .collect()
}

/// Encodes every case and reports all mismatches at once.
fn check_vectors(name: &str) -> (Tokenizer, usize) {
    let tok = load(name);
    let cases = cases(name);
    let mut bad = Vec::new();
    for (text, want) in &cases {
        let got = tok.encode(text, false, false).unwrap();
        if &got != want {
            bad.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: {} of {} cases differ:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
    (tok, cases.len())
}

/// `decode(encode(s)) == s` for every case: both vocabularies are lossless on
/// valid UTF-8 (SPM through byte fallback, BPE through byte-level characters).
fn check_round_trip(name: &str, tok: &Tokenizer) {
    let mut bad = Vec::new();
    for (text, _) in cases(name) {
        let ids = tok.encode(&text, false, false).unwrap();
        let back = tok.decode(&ids);
        if back != text {
            bad.push(format!("{text:?} -> {back:?}"));
        }
        // With BOS (when the vocabulary adds one) the text comes back the same.
        let ids = tok.encode(&text, true, false).unwrap();
        if tok.decode(&ids) != text {
            bad.push(format!("{text:?} with BOS -> {:?}", tok.decode(&ids)));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: round trip differs:\n{}",
        bad.join("\n")
    );
}

#[test]
fn llama_spm_matches_llama_cpp_vectors() {
    let (tok, n) = check_vectors("llama-spm");
    assert!(n >= 30, "only {n} cases read");
    assert_eq!(tok.kind(), "spm");
    assert_eq!(tok.n_vocab(), 32000);
    assert_eq!((tok.bos(), tok.eos()), (Some(1), Some(2)));
    assert!(tok.add_bos());
    assert_eq!(
        tok.encode("Hello world", true, false).unwrap(),
        vec![1, 15043, 3186]
    );
    check_round_trip("llama-spm", &tok);
}

#[test]
fn gpt2_matches_llama_cpp_vectors() {
    let (tok, n) = check_vectors("gpt-2");
    assert!(n >= 30, "only {n} cases read");
    assert_eq!(tok.kind(), "bpe");
    assert_eq!(tok.n_vocab(), 50257);
    assert!(!tok.add_bos());
    assert_eq!(tok.eos(), Some(50256));
    assert!(tok.is_eog(50256));
    check_round_trip("gpt-2", &tok);
}

#[test]
fn special_text_is_parsed_only_when_asked() {
    let tok = load("gpt-2");
    let s = "a<|endoftext|>b";
    let parsed = tok.encode(s, false, true).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[1], 50256);
    let plain = tok.encode(s, false, false).unwrap();
    assert!(!plain.contains(&50256), "{plain:?}");
    // Control tokens are not printed; the surrounding text is.
    assert_eq!(tok.decode(&parsed), "ab");
    assert_eq!(tok.decode(&plain), s);

    let tok = load("llama-spm");
    assert_eq!(tok.encode("<s>Hi", false, true).unwrap()[0], 1);
    assert_ne!(tok.encode("<s>Hi", false, false).unwrap()[0], 1);
}

#[test]
fn stream_decoder_joins_split_characters() {
    // SPM: "🦙" has no piece, so it is four byte tokens; each push before the last
    // must return nothing, and the whole stream must equal `decode`.
    let tok = load("llama-spm");
    let text = "Ünïcödé 🦙 and 日本語 text";
    let ids = tok.encode(text, false, false).unwrap();
    let mut d = StreamDecoder::new();
    let mut streamed = String::new();
    let mut held_back = 0;
    for &id in &ids {
        let s = d.push(&tok, id);
        if s.is_empty() && !tok.token_bytes(id).is_empty() {
            held_back += 1;
        }
        streamed.push_str(&s);
    }
    streamed.push_str(&d.flush());
    assert!(
        held_back >= 3,
        "expected byte tokens held back, got {held_back}"
    );
    // Streaming does not strip the SPM leading space; decode does.
    assert_eq!(streamed, format!(" {text}"));
    assert_eq!(tok.decode(&ids), text);

    // Byte-level BPE: multi-byte characters are often split across tokens too.
    let tok = load("gpt-2");
    let ids = tok.encode(text, false, false).unwrap();
    let mut d = StreamDecoder::new();
    let mut streamed = String::new();
    for &id in &ids {
        let s = d.push(&tok, id);
        assert!(!s.contains('\u{FFFD}'), "partial character leaked: {s:?}");
        streamed.push_str(&s);
    }
    streamed.push_str(&d.flush());
    assert_eq!(streamed, text);
}

/// The SmolLM2 model file, when `scripts/fetch-smollm2.sh` has put it in the cache.
fn smollm2_path() -> Option<PathBuf> {
    let cache = std::env::var_os("VKGRAPH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/vkgraph")))?;
    let p = cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.exists().then_some(p)
}

/// SmolLM2's vocabulary with its own pre-tokenizer (`smollm`) and, to cover the other
/// supported ones, with `tokenizer.ggml.pre` replaced: the reference ids come from
/// llama-server run on a copy of the file with that key rewritten.
#[test]
fn smollm2_matches_llama_server_ids() {
    let Some(path) = smollm2_path() else {
        panic!("SmolLM2 GGUF not found: run scripts/fetch-smollm2.sh (scripts/test.sh does)");
    };
    let f = GgufFile::open(&path).unwrap();
    let vocab = vocab_from_gguf(&f).unwrap();
    assert_eq!(vocab.pre.as_deref(), Some("smollm"));
    let tok = Tokenizer::from_gguf(&f).unwrap();
    assert_eq!(tok.kind(), "bpe");
    assert!(!tok.add_bos());
    assert_eq!((tok.bos(), tok.eos()), (Some(1), Some(2)));
    assert!(
        tok.is_eog(2) && tok.is_eog(0),
        "<|im_end|> and <|endoftext|> end generation"
    );

    let json = std::fs::read_to_string(fixture("smollm2-tokenize.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sets = v["sets"].as_array().unwrap();
    let pres: Vec<&str> = sets.iter().map(|s| s["pre"].as_str().unwrap()).collect();
    for want in ["smollm", "llama-bpe", "qwen2", "gpt-2", "default"] {
        assert!(pres.contains(&want), "fixture lacks pre-tokenizer {want}");
    }
    let mut bad = Vec::new();
    let mut n = 0;
    for set in sets {
        let pre = set["pre"].as_str().unwrap();
        let mut vd = vocab.clone();
        vd.pre = Some(pre.to_string());
        let tok = Tokenizer::new(vd).unwrap();
        for c in set["cases"].as_array().unwrap() {
            let text = c["content"].as_str().unwrap();
            let add_special = c["add_special"].as_bool().unwrap();
            let parse_special = c["parse_special"].as_bool().unwrap();
            let want: Vec<u32> = c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            let got = tok.encode(text, add_special, parse_special).unwrap();
            if got != want {
                bad.push(format!(
                    "[{pre}] {text:?} (add_special={add_special}, parse_special={parse_special})\n  want {want:?}\n  got  {got:?}"
                ));
            }
            if !parse_special && tok.decode(&got) != text {
                bad.push(format!(
                    "[{pre}] {text:?} round trip -> {:?}",
                    tok.decode(&got)
                ));
            }
            n += 1;
        }
    }
    assert!(n >= 100, "only {n} cases read");
    assert!(
        bad.is_empty(),
        "SmolLM2: {} of {n} checks differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
