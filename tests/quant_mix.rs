//! The quant mix against what llama-quantize (llama.cpp 0c1e570) chose for F16 models
//! of the qwen3-0.6b, llama-8b and qwen3moe (48 layers, 128 experts: Qwen3-30B-A3B's
//! layout at small widths) shapes (tests/fixtures/quant-mixes, copied from shared/data),
//! plus a tiny shape where the rules are worked out by hand.

use std::path::Path;

use vkgraph::model::quant_mix::{tensor_type, Ftype, MixContext};
use vkgraph::quant::GgmlType;

/// One fixture line: name, type, [ne0,ne1,ne2,ne3].
struct Line {
    name: String,
    ty: GgmlType,
    ne: Vec<u64>,
}

fn read_fixture(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "bad fixture line `{l}`");
            let ty = GgmlType::from_name(f[1]).unwrap_or_else(|| panic!("type in `{l}`"));
            let ne = f[2]
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|n| n.parse().unwrap())
                .collect();
            Line {
                name: f[0].to_string(),
                ty,
                ne,
            }
        })
        .collect()
}

/// Hyper-parameters of the fixture shapes (shared/ANCHORS.md).
fn shape(model: &str, lines: &[Line]) -> MixContext {
    let (arch, n_layer, n_head, n_head_kv) = match model {
        "qwen3-0.6b" => ("qwen3", 28, 16, 8),
        "llama-8b" => ("llama", 32, 32, 8),
        "qwen3moe-48l-128e" => ("qwen3moe", 48, 32, 4),
        _ => panic!("unknown fixture model {model}"),
    };
    let blocks = lines
        .iter()
        .filter_map(|l| {
            l.name
                .strip_prefix("blk.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    assert_eq!(blocks, n_layer, "{model}: fixture layer count");
    MixContext {
        arch: arch.into(),
        n_layer,
        n_head,
        n_head_kv,
        // The router's rows: one per expert.
        n_expert: lines
            .iter()
            .find(|l| l.name.ends_with("ffn_gate_inp.weight"))
            .map_or(0, |l| l.ne[1] as usize),
        has_output: lines.iter().any(|l| l.name == "output.weight"),
    }
}

#[test]
fn reproduces_llama_quantize_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quant-mixes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 12, "expected 12 fixtures in {}", dir.display());

    let mut checked = 0;
    for path in &files {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        // `<model>-<ftype>`; the ftype never contains '-'.
        let (model, ftype_name) = stem.rsplit_once('-').unwrap();
        let ftype = Ftype::parse(ftype_name).unwrap();
        let lines = read_fixture(path);
        let ctx = shape(model, &lines);
        let mut wrong = Vec::new();
        // Ask in reverse order too: the answer must not depend on the walk order.
        for l in lines.iter().chain(lines.iter().rev()) {
            let got = tensor_type(ftype, &l.name, &l.ne, &ctx);
            if got != l.ty {
                wrong.push(format!("{}: got {got}, llama-quantize {}", l.name, l.ty));
            }
            checked += 1;
        }
        assert!(
            wrong.is_empty(),
            "{stem}: {} mismatches:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
    assert_eq!(checked, 2 * (1826 + 3474));
}

// ---- tiny shape: n_embd 256, n_ff 512, 2 layers, 4 heads / 2 KV heads (head_dim 64) ----

fn tiny(n_embd: u64, has_output: bool) -> (MixContext, Vec<(String, Vec<u64>)>) {
    let (n_ff, vocab, head_dim) = (2 * n_embd, 1024u64, n_embd / 4);
    let mut t = vec![("token_embd.weight".to_string(), vec![n_embd, vocab])];
    t.push(("output_norm.weight".into(), vec![n_embd]));
    if has_output {
        t.push(("output.weight".into(), vec![n_embd, vocab]));
    }
    for i in 0..2 {
        let b = |s: &str| format!("blk.{i}.{s}.weight");
        t.push((b("attn_norm"), vec![n_embd]));
        t.push((b("attn_q"), vec![n_embd, 4 * head_dim]));
        t.push((b("attn_k"), vec![n_embd, 2 * head_dim]));
        t.push((b("attn_v"), vec![n_embd, 2 * head_dim]));
        t.push((b("attn_output"), vec![4 * head_dim, n_embd]));
        t.push((b("ffn_norm"), vec![n_embd]));
        t.push((b("ffn_gate"), vec![n_embd, n_ff]));
        t.push((b("ffn_up"), vec![n_embd, n_ff]));
        t.push((b("ffn_down"), vec![n_ff, n_embd]));
    }
    let ctx = MixContext {
        arch: "llama".into(),
        n_layer: 2,
        n_head: 4,
        n_head_kv: 2,
        n_expert: 0,
        has_output,
    };
    (ctx, t)
}

fn mix(ftype: Ftype, ctx: &MixContext, tensors: &[(String, Vec<u64>)]) -> Vec<(String, GgmlType)> {
    tensors
        .iter()
        .map(|(n, ne)| (n.clone(), tensor_type(ftype, n, ne, ctx)))
        .collect()
}

fn type_of(m: &[(String, GgmlType)], name: &str) -> GgmlType {
    m.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn tiny_q4_k_m() {
    use GgmlType as T;
    let (ctx, t) = tiny(256, true);
    let m = mix(Ftype::Q4_K_M, &ctx, &t);
    // 2 layers: n/8 = 0, 7n/8 = 1, so use_more_bits picks layer 1 only.
    for (name, want) in [
        ("token_embd.weight", T::Q4K),
        ("output_norm.weight", T::F32),
        ("output.weight", T::Q6K),
        ("blk.0.attn_norm.weight", T::F32),
        ("blk.0.attn_q.weight", T::Q4K),
        ("blk.0.attn_k.weight", T::Q4K),
        ("blk.0.attn_v.weight", T::Q4K),
        ("blk.1.attn_q.weight", T::Q4K),
        ("blk.1.attn_k.weight", T::Q4K),
        ("blk.1.attn_v.weight", T::Q6K),
        ("blk.0.attn_output.weight", T::Q4K),
        ("blk.0.ffn_gate.weight", T::Q4K),
        ("blk.0.ffn_up.weight", T::Q4K),
        ("blk.0.ffn_down.weight", T::Q4K),
        ("blk.1.ffn_down.weight", T::Q6K),
    ] {
        assert_eq!(type_of(&m, name), want, "q4_k_m {name}");
    }
    // Q/K share a type (fusable), V differs in layer 1 only.
    assert_eq!(
        type_of(&m, "blk.0.attn_v.weight"),
        type_of(&m, "blk.0.attn_q.weight")
    );
    assert_ne!(
        type_of(&m, "blk.1.attn_v.weight"),
        type_of(&m, "blk.1.attn_q.weight")
    );
}

#[test]
fn tiny_q2_k() {
    use GgmlType as T;
    let (ctx, t) = tiny(256, true);
    let m = mix(Ftype::Q2_K, &ctx, &t);
    // n_gqa = 2 < 4, so attn_v is q3_K in every layer (q4_K would need n_gqa >= 4).
    for i in 0..2 {
        let b = |s: &str| format!("blk.{i}.{s}.weight");
        assert_eq!(type_of(&m, &b("attn_q")), T::Q2K);
        assert_eq!(type_of(&m, &b("attn_k")), T::Q2K);
        assert_eq!(type_of(&m, &b("attn_v")), T::Q3K);
        assert_eq!(type_of(&m, &b("attn_output")), T::Q3K);
        assert_eq!(type_of(&m, &b("ffn_gate")), T::Q2K);
        assert_eq!(type_of(&m, &b("ffn_up")), T::Q2K);
        assert_eq!(type_of(&m, &b("ffn_down")), T::Q3K);
    }
    assert_eq!(type_of(&m, "token_embd.weight"), T::Q2K);
    assert_eq!(type_of(&m, "output.weight"), T::Q6K);

    // With 8 query heads per KV head, V moves up to q4_K.
    let gqa8 = MixContext { n_head: 16, ..ctx };
    assert_eq!(
        tensor_type(Ftype::Q2_K, "blk.0.attn_v.weight", &[256, 128], &gqa8),
        T::Q4K
    );
}

#[test]
fn tied_embeddings_quantize_token_embd_as_output() {
    use GgmlType as T;
    let (ctx, t) = tiny(256, false);
    for (ftype, want) in [
        (Ftype::Q4_K_M, T::Q6K),
        (Ftype::Q2_K, T::Q6K),
        (Ftype::Q4_0, T::Q6K),
        (Ftype::Q8_0, T::Q8_0),
        (Ftype::F16, T::F16),
    ] {
        assert_eq!(
            type_of(&mix(ftype, &ctx, &t), "token_embd.weight"),
            want,
            "{ftype}"
        );
    }
}

#[test]
fn rows_not_multiple_of_256_fall_back() {
    use GgmlType as T;
    // n_embd 288 = 9 * 32: K-quants do not fit rows of 288, legacy 32-blocks do.
    let (ctx, t) = tiny(288, true);
    let m = mix(Ftype::Q4_K_M, &ctx, &t);
    assert_eq!(type_of(&m, "blk.0.attn_q.weight"), T::Q5_0); // q4_K -> q5_0
    assert_eq!(type_of(&m, "blk.1.attn_v.weight"), T::Q8_0); // q6_K -> q8_0
    assert_eq!(type_of(&m, "output.weight"), T::Q8_0); // row not a multiple of q4_K's block
                                                       // ffn_down rows are n_ff = 576 long, also not a multiple of 256.
    assert_eq!(type_of(&m, "blk.0.ffn_down.weight"), T::Q5_0);
    assert_eq!(type_of(&m, "blk.1.ffn_down.weight"), T::Q8_0);

    let m = mix(Ftype::Q2_K, &ctx, &t);
    assert_eq!(type_of(&m, "blk.0.attn_q.weight"), T::Q4_0); // q2_K -> q4_0
    assert_eq!(type_of(&m, "blk.0.attn_v.weight"), T::Q4_0); // q3_K -> q4_0
    assert_eq!(type_of(&m, "token_embd.weight"), T::Q4_0);

    // A row that not even a 32-block divides ends in f16.
    assert_eq!(
        tensor_type(Ftype::Q4_K_M, "blk.0.attn_q.weight", &[48, 48], &ctx),
        T::F16
    );
    assert_eq!(
        tensor_type(Ftype::Q4_0, "blk.0.attn_q.weight", &[48, 48], &ctx),
        T::F16
    );
    assert_eq!(
        tensor_type(
            Ftype::Pure(T::Q6K),
            "blk.0.attn_q.weight",
            &[288, 288],
            &ctx
        ),
        T::Q8_0
    );
}

#[test]
fn pure_gives_every_matrix_one_type() {
    use GgmlType as T;
    let (ctx, t) = tiny(256, true);
    for ty in [T::Q4_0, T::Q2K, T::Q6K, T::F16] {
        for (name, ty_got) in mix(Ftype::Pure(ty), &ctx, &t) {
            let want = if name.contains("norm") { T::F32 } else { ty };
            assert_eq!(ty_got, want, "pure-{ty} {name}");
        }
    }
}

#[test]
fn float_ftypes_keep_norms_f32() {
    use GgmlType as T;
    let (ctx, t) = tiny(256, true);
    for (ftype, ty) in [
        (Ftype::F32, T::F32),
        (Ftype::F16, T::F16),
        (Ftype::BF16, T::BF16),
    ] {
        for (name, got) in mix(ftype, &ctx, &t) {
            let want = if name.contains("norm") { T::F32 } else { ty };
            assert_eq!(got, want, "{ftype} {name}");
        }
    }
    // The MoE router stays f32 too.
    assert_eq!(
        tensor_type(Ftype::Q4_K_M, "blk.0.ffn_gate_inp.weight", &[256, 8], &ctx),
        T::F32
    );
}

#[test]
fn ftype_names_round_trip() {
    let mut all: Vec<Ftype> = Ftype::ALL.to_vec();
    all.extend(GgmlType::WEIGHT_TYPES.map(Ftype::Pure));
    for f in all {
        let name = f.name();
        assert_eq!(Ftype::parse(&name).unwrap(), f, "{name}");
        assert_eq!(
            Ftype::parse(&name.to_ascii_uppercase()).unwrap(),
            f,
            "{name} upper"
        );
    }
    assert_eq!(Ftype::parse("Q4_K_M").unwrap(), Ftype::Q4_K_M);
    assert_eq!(Ftype::parse("pure-q4_K").unwrap().name(), "pure-q4_K");
    assert_eq!(Ftype::parse("q4_k").unwrap(), Ftype::Q4_K_M); // llama-quantize alias
    for bad in ["q4_k_x", "iq2_xxs", "pure-i32", "pure-q9_9", ""] {
        match Ftype::parse(bad) {
            Err(vkgraph::Error::Usage(msg)) => assert!(msg.contains("q4_k_m"), "{bad}: {msg}"),
            other => panic!("`{bad}` parsed as {other:?}"),
        }
    }
}

#[test]
fn file_type_ids_are_llama_cpp_ftypes() {
    // LLAMA_FTYPE_* from llama.h.
    let ids: Vec<u32> = Ftype::ALL.iter().map(|f| f.file_type()).collect();
    assert_eq!(
        ids,
        [0, 1, 32, 2, 3, 8, 9, 7, 10, 11, 12, 14, 15, 16, 17, 18]
    );
    assert_eq!(Ftype::Pure(GgmlType::Q4K).file_type(), 15);
}
