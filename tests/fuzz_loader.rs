//! Bounded mutation fuzzing of the GGUF reader and the model loader: a micro model
//! (qwen3 and llama layouts, every tensor present, a few KB) is corrupted 100,000 times
//! per run — byte flips, random bytes, little-endian words written over header fields,
//! truncations — and each mutant goes through `GgufFile::from_bytes`, `Model::from_file`
//! and, when it loads, one CPU forward pass of two tokens. No step may panic, and a
//! mutant that loads must give logits of the right length; errors are fine. Seeds are
//! fixed, so a failure reproduces (the case number is printed). `VKGRAPH_FUZZ_ITERS`
//! changes the count (CI: the default).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use vkgraph::backend::cpu::CpuBackend;
use vkgraph::gguf::{GgufFile, GgufWriter, Value};
use vkgraph::model::Model;
use vkgraph::passes::QkvMode;
use vkgraph::quant::GgmlType;
use vkgraph::sched::session::{Session, SessionOptions};

/// A valid micro model of `arch` (llama or qwen3): 1 layer, n_embd 32, 4/2 heads of 8,
/// ffn 64, vocab 16; small deterministic weights.
fn micro(arch: &str) -> Vec<u8> {
    let (e, f, nh, nkv, hd, nv) = (32u64, 64u64, 4u64, 2u64, 8u64, 16u64);
    let mut w = GgufWriter::new();
    w.add("general.architecture", arch);
    let k = |s: &str| format!("{arch}.{s}");
    w.add(&k("block_count"), Value::U32(1));
    w.add(&k("embedding_length"), Value::U32(e as u32));
    w.add(&k("feed_forward_length"), Value::U32(f as u32));
    w.add(&k("attention.head_count"), Value::U32(nh as u32));
    w.add(&k("attention.head_count_kv"), Value::U32(nkv as u32));
    w.add(&k("attention.key_length"), Value::U32(hd as u32));
    w.add(&k("attention.value_length"), Value::U32(hd as u32));
    w.add(&k("context_length"), Value::U32(64));
    w.add(&k("rope.dimension_count"), Value::U32(hd as u32));
    w.add(&k("rope.freq_base"), Value::F32(10000.0));
    w.add(&k("attention.layer_norm_rms_epsilon"), Value::F32(1e-6));
    let mut tensors: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![e, nv]),
        ("output_norm.weight".into(), vec![e]),
        ("output.weight".into(), vec![e, nv]),
    ];
    let mut layer = vec![
        ("attn_norm.weight", vec![e]),
        ("attn_q.weight", vec![e, nh * hd]),
        ("attn_k.weight", vec![e, nkv * hd]),
        ("attn_v.weight", vec![e, nkv * hd]),
        ("attn_output.weight", vec![nh * hd, e]),
        ("ffn_norm.weight", vec![e]),
        ("ffn_gate.weight", vec![e, f]),
        ("ffn_up.weight", vec![e, f]),
        ("ffn_down.weight", vec![f, e]),
    ];
    if arch == "qwen3" {
        layer.push(("attn_q_norm.weight", vec![hd]));
        layer.push(("attn_k_norm.weight", vec![hd]));
    }
    tensors.extend(layer.into_iter().map(|(n, ne)| (format!("blk.0.{n}"), ne)));
    for (name, ne) in &tensors {
        w.add_tensor(name, GgmlType::F32, ne).unwrap();
    }
    w.to_bytes(|i, t, out| {
        let vals: Vec<f32> = (0..t.n_elements())
            .map(|j| (((i as u64 * 7919 + j * 104_729) % 97) as f32 - 48.0) / 200.0)
            .collect();
        out.write_all(bytemuck::cast_slice(&vals))
            .map_err(|e| vkgraph::Error::io("<memory>", e))
    })
    .unwrap()
}

/// Loads `bytes` and runs two tokens on the CPU; returns whether it loaded.
fn exercise(bytes: Vec<u8>) -> bool {
    let Ok(file) = GgufFile::from_bytes("fuzz", bytes) else {
        return false;
    };
    let Ok(model) = Model::from_file(file) else {
        return false;
    };
    let model = Arc::new(model);
    let n_vocab = model.hp.n_vocab;
    let mut s = Session::new(
        model.clone(),
        vec![Box::new(CpuBackend::new(model))],
        SessionOptions {
            qkv: QkvMode::Auto,
            n_ctx: 8,
            ..Default::default()
        },
    );
    if let Ok(logits) = s.forward(&[1, 2], false) {
        assert_eq!(logits.len(), n_vocab, "logits of a loaded mutant");
    }
    true
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_models_never_panic() {
    let iters: usize = std::env::var("VKGRAPH_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for arch in ["llama", "qwen3"] {
        let base = micro(arch);
        assert!(
            exercise(base.clone()),
            "{arch}: the unmutated micro model must load"
        );
        let head = GgufFile::from_bytes("base", base.clone())
            .unwrap()
            .data_offset as usize;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ arch.len() as u64);
        let mut loaded = 0usize;
        for case in 0..iters / 2 {
            let mut b = base.clone();
            for _ in 0..1 + rng.next() % 3 {
                // Mostly the header (metadata and tensor infos), sometimes anywhere.
                let span = if rng.next() % 8 == 0 {
                    b.len()
                } else {
                    head.min(b.len())
                };
                let pos = (rng.next() % span as u64) as usize;
                match rng.next() % 4 {
                    0 => b[pos] ^= 1 << (rng.next() % 8),
                    1 => b[pos] = rng.next() as u8,
                    2 => {
                        // A little-endian word: small counts, huge sizes, NaN/inf floats.
                        let word = match rng.next() % 4 {
                            0 => rng.next() % 300,
                            1 => u64::MAX - rng.next() % 3,
                            2 => u64::from(f32::NAN.to_bits()) | (rng.next() << 32),
                            _ => rng.next(),
                        }
                        .to_le_bytes();
                        let end = (pos + 4 + (rng.next() % 5) as usize).min(b.len());
                        b[pos..end].copy_from_slice(&word[..end - pos]);
                    }
                    _ => b.truncate(pos.max(1)),
                }
            }
            let r = catch_unwind(AssertUnwindSafe(|| exercise(b)));
            match r {
                Ok(ok) => loaded += usize::from(ok),
                Err(_) => {
                    panic!("{arch}: mutant {case} panicked (VKGRAPH_FUZZ_ITERS, seeds fixed)")
                }
            }
        }
        eprintln!(
            "{arch}: {} mutants, {loaded} loaded and ran, none panicked",
            iters / 2
        );
    }
}
