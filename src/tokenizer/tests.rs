//! Unit tests on small hand-made vocabularies; the llama.cpp test vectors on real
//! vocabularies live in `tests/tokenizer.rs`.

use super::*;

/// A tiny SPM vocabulary: unk, bos, eos, 256 byte tokens, then scored pieces.
fn spm_vocab(pieces: &[(&str, f32)], extra: &[(&str, i32)]) -> VocabData {
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
        scores.push(0.0);
    }
    for (p, s) in pieces {
        tokens.push(p.to_string());
        types.push(1);
        scores.push(*s);
    }
    for (p, t) in extra {
        tokens.push(p.to_string());
        types.push(*t);
        scores.push(0.0);
    }
    VocabData {
        model: "llama".into(),
        tokens,
        scores: Some(scores),
        token_types: Some(types),
        ..Default::default()
    }
}

fn ids_of(t: &Tokenizer, texts: &[&str]) -> Vec<u32> {
    texts.iter().map(|s| t.token_id(s).unwrap()).collect()
}

#[test]
fn spm_merges_by_score_with_space_prefix() {
    // "▁ab" can form as ▁a+b (score -1 path) or ▁+ab; the higher-scored pair
    // merges first: "ab" (-0.5) beats "▁a" (-2), then "▁ab" from ▁+ab.
    let v = spm_vocab(
        &[
            ("▁", -1.0),
            ("a", -1.0),
            ("b", -1.0),
            ("▁a", -2.0),
            ("ab", -0.5),
            ("▁ab", -3.0),
        ],
        &[],
    );
    let t = Tokenizer::new(v).unwrap();
    assert_eq!(t.encode("ab", false, false).unwrap(), ids_of(&t, &["▁ab"]));
    // Without the final piece, ▁ stays alone because "ab" merged first.
    let v = spm_vocab(
        &[
            ("▁", -1.0),
            ("a", -1.0),
            ("b", -1.0),
            ("▁a", -2.0),
            ("ab", -0.5),
        ],
        &[],
    );
    let t = Tokenizer::new(v).unwrap();
    assert_eq!(
        t.encode("ab", false, false).unwrap(),
        ids_of(&t, &["▁", "ab"])
    );
    // With the opposite scores, ▁a merges first and b stays alone.
    let v = spm_vocab(
        &[
            ("▁", -1.0),
            ("a", -1.0),
            ("b", -1.0),
            ("▁a", -0.5),
            ("ab", -2.0),
        ],
        &[],
    );
    let t = Tokenizer::new(v).unwrap();
    assert_eq!(
        t.encode("ab", false, false).unwrap(),
        ids_of(&t, &["▁a", "b"])
    );
    assert_eq!(t.decode(&t.encode("ab", false, false).unwrap()), "ab");
}

#[test]
fn spm_byte_fallback_and_bos() {
    let v = spm_vocab(&[("▁", -1.0), ("a", -1.0)], &[]);
    let t = Tokenizer::new(v).unwrap();
    assert!(t.add_bos());
    assert_eq!(t.bos(), Some(1));
    assert_eq!(t.eos(), Some(2));
    // 'é' is not a piece: its two UTF-8 bytes fall back to <0xC3> <0xA9>.
    let ids = t.encode("aé", true, false).unwrap();
    let want: Vec<u32> = [1u32]
        .into_iter()
        .chain(ids_of(&t, &["▁", "a", "<0xC3>", "<0xA9>"]))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(t.decode(&ids), "aé");
    assert!(t.encode("", false, false).unwrap().is_empty());
    assert_eq!(t.encode("", true, false).unwrap(), vec![1]);
    assert!(t.is_eog(2) && !t.is_eog(1));
}

#[test]
fn spm_special_tokens_parse_only_when_asked() {
    let v = spm_vocab(&[("▁", -1.0), ("a", -1.0)], &[("<ctl>", 3), ("<usr>", 4)]);
    let t = Tokenizer::new(v).unwrap();
    let ctl = t.token_id("<ctl>").unwrap();
    let usr = t.token_id("<usr>").unwrap();
    let sp = t.token_id("▁").unwrap();
    let a = t.token_id("a").unwrap();
    // parse_special: the control token is one id; text after a special token gets
    // the space prefix again (llama.cpp's is_prev_special).
    assert_eq!(
        t.encode("a<ctl>a", false, true).unwrap(),
        vec![sp, a, ctl, sp, a]
    );
    // Not parsed: the text is tokenized as characters (bytes here).
    let plain = t.encode("<ctl>", false, false).unwrap();
    assert!(!plain.contains(&ctl) && plain.len() > 1);
    // User-defined tokens are always split out.
    assert_eq!(t.encode("<usr>", false, false).unwrap(), vec![usr]);
    // Control tokens print nothing, user-defined ones print their text.
    assert_eq!(t.decode(&[ctl, usr]), "<usr>");
    assert_eq!(t.token_to_piece(ctl, true), b"<ctl>");
}

/// Byte-level BPE vocabulary: the 256 byte characters, then merges' results.
fn bpe_vocab(pre: &str, merges: &[&str], extra: &[(&str, i32)]) -> VocabData {
    let mut tokens: Vec<String> = Vec::new();
    for b in 0..=255u8 {
        tokens.push(bpe::byte_decode_inverse(b).to_string());
    }
    let mut merged = Vec::new();
    for m in merges {
        let (a, b) = m.split_once(' ').unwrap();
        let t = format!("{a}{b}");
        if !tokens.contains(&t) {
            tokens.push(t);
        }
        merged.push(m.to_string());
    }
    let mut types = vec![1; tokens.len()];
    for (p, ty) in extra {
        tokens.push(p.to_string());
        types.push(*ty);
    }
    VocabData {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        token_types: Some(types),
        merges: Some(merged),
        ..Default::default()
    }
}

#[test]
fn bpe_merges_in_rank_order_per_word() {
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o"];
    let v = bpe_vocab("gpt-2", &merges, &[("<|endoftext|>", 3)]);
    let t = Tokenizer::new(v).unwrap();
    let ids = t.encode("hello wo", false, false).unwrap();
    assert_eq!(ids, ids_of(&t, &["hello", "Ġwo"]));
    assert_eq!(t.decode(&ids), "hello wo");
    // gpt2 defaults: no BOS added; EOS from the metadata.
    assert!(!t.add_bos());
    let eot = t.token_id("<|endoftext|>").unwrap();
    assert_eq!(t.encode("<|endoftext|>", false, true).unwrap(), vec![eot]);
    assert!(
        t.is_eog(eot),
        "<|endoftext|> is an end-of-generation marker"
    );
    // Newlines and multi-byte characters are bytes mapped to byte-level characters.
    let s = "h\né 😀";
    assert_eq!(t.decode(&t.encode(s, false, false).unwrap()), s);
}

#[test]
fn bpe_pre_tokenizers_split_differently() {
    let digits = "12345";
    // smollm splits every digit; llama3 groups up to three; gpt-2 keeps the run.
    let count = |pre: &str| {
        let t = Tokenizer::new(bpe_vocab(pre, &["1 2", "12 3", "123 4", "1234 5"], &[])).unwrap();
        t.encode(digits, false, false).unwrap().len()
    };
    assert_eq!(count("smollm"), 5);
    assert_eq!(count("llama-bpe"), 3); // "123" + "4" + "5"
    assert_eq!(count("qwen2"), 5);
    assert_eq!(count("gpt-2"), 1);
}

#[test]
fn unknown_model_or_pre_is_named_in_the_error() {
    let mut v = bpe_vocab("no-such-pre", &[], &[]);
    let e = Tokenizer::new(v.clone()).err().unwrap().to_string();
    assert!(e.contains("no-such-pre"), "{e}");
    v.model = "wordpiece-x".into();
    let e = Tokenizer::new(v).err().unwrap().to_string();
    assert!(e.contains("wordpiece-x"), "{e}");
}

#[test]
fn stream_decoder_holds_partial_characters() {
    let v = spm_vocab(&[("▁", -1.0), ("a", -1.0)], &[]);
    let t = Tokenizer::new(v).unwrap();
    let b = |x: u8| t.token_id(&format!("<0x{x:02X}>")).unwrap();
    // "€" = E2 82 AC, "😀" = F0 9F 98 80, split across byte tokens.
    let ids = [
        b(0xE2),
        b(0x82),
        b(0xAC),
        t.token_id("a").unwrap(),
        b(0xF0),
        b(0x9F),
        b(0x98),
        b(0x80),
    ];
    let mut d = StreamDecoder::new();
    let outs: Vec<String> = ids.iter().map(|&i| d.push(&t, i)).collect();
    assert_eq!(outs, ["", "", "€", "a", "", "", "", "😀"]);
    assert_eq!(d.flush(), "");
    // A lone continuation byte can never complete: replaced at once.
    assert_eq!(d.push(&t, b(0x80)), "\u{FFFD}");
    // An unfinished character at the end is flushed as U+FFFD.
    assert_eq!(d.push(&t, b(0xE2)), "");
    assert_eq!(d.flush(), "\u{FFFD}");
}

#[test]
fn out_of_range_special_ids_fall_back_to_defaults() {
    let mut v = spm_vocab(&[("▁", -1.0)], &[]);
    v.bos = Some(1_000_000);
    v.pad = Some(1_000_000);
    let t = Tokenizer::new(v).unwrap();
    assert_eq!(t.bos(), Some(1), "SPM default BOS kept");
    assert_eq!(t.pad(), None);
    assert_eq!(t.unk(), Some(0));
}
