//! `vkgraph gen-model`: writes random-weight GGUF models of real shapes in a
//! llama-quantize scheme, with a small byte-level BPE vocabulary padded to the
//! preset's vocab size (so the output matmul has its real cost) — runnable, but
//! the text is noise. Deterministic for a seed. Tensors are generated, quantized
//! (rows spread over all cores) and written one at a time, so an 8B model never
//! sits in memory.

use std::path::Path;

use super::quant_mix::{tensor_type, Ftype, MixContext};
use super::Arch;
use crate::gguf::{Array, GgufWriter, TensorInfo, Value};
use crate::quant::{self, GgmlType};
use crate::{Error, Result};

/// A size preset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_vocab: usize,
    pub tied: bool,
    pub rope_base: f32,
}

pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "tiny",
        n_layer: 2,
        n_embd: 256,
        n_ff: 512,
        n_head: 4,
        n_head_kv: 2,
        head_dim: 128,
        n_vocab: 1024,
        tied: false,
        rope_base: 10000.0,
    },
    Preset {
        name: "qwen3-0.6b",
        n_layer: 28,
        n_embd: 1024,
        n_ff: 3072,
        n_head: 16,
        n_head_kv: 8,
        head_dim: 128,
        n_vocab: 151936,
        tied: false,
        rope_base: 1000000.0,
    },
    Preset {
        name: "qwen3-1.7b",
        n_layer: 28,
        n_embd: 2048,
        n_ff: 6144,
        n_head: 16,
        n_head_kv: 8,
        head_dim: 128,
        n_vocab: 151936,
        tied: true,
        rope_base: 1000000.0,
    },
    Preset {
        name: "llama-8b",
        n_layer: 32,
        n_embd: 4096,
        n_ff: 14336,
        n_head: 32,
        n_head_kv: 8,
        head_dim: 128,
        n_vocab: 128256,
        tied: false,
        rope_base: 500000.0,
    },
];

impl Preset {
    pub fn find(name: &str) -> Result<Preset> {
        PRESETS
            .iter()
            .copied()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
                Error::Usage(format!(
                    "unknown preset `{name}` (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}

/// Options of `gen-model`.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub arch: Arch,
    pub preset: Preset,
    pub ftype: Ftype,
    pub seed: u64,
}

/// SplitMix64: a tiny, fast, seedable generator (deterministic across machines).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn hash(s: &str, seed: u64) -> u64 {
    s.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The tensors of a model in llama.cpp's file order: (name, ne).
pub fn tensor_list(arch: Arch, p: &Preset) -> Vec<(String, Vec<u64>)> {
    let (e, f, v) = (p.n_embd as u64, p.n_ff as u64, p.n_vocab as u64);
    let q = (p.n_head * p.head_dim) as u64;
    let kv = (p.n_head_kv * p.head_dim) as u64;
    let mut t = vec![
        ("token_embd.weight".to_string(), vec![e, v]),
        ("output_norm.weight".into(), vec![e]),
    ];
    if !p.tied {
        t.push(("output.weight".into(), vec![e, v]));
    }
    for il in 0..p.n_layer {
        let b = |s: &str| format!("blk.{il}.{s}");
        t.push((b("attn_norm.weight"), vec![e]));
        t.push((b("attn_q.weight"), vec![e, q]));
        t.push((b("attn_k.weight"), vec![e, kv]));
        t.push((b("attn_v.weight"), vec![e, kv]));
        if arch == Arch::Qwen2 {
            t.push((b("attn_q.bias"), vec![q]));
            t.push((b("attn_k.bias"), vec![kv]));
            t.push((b("attn_v.bias"), vec![kv]));
        }
        t.push((b("attn_output.weight"), vec![q, e]));
        if arch == Arch::Qwen3 {
            t.push((b("attn_q_norm.weight"), vec![p.head_dim as u64]));
            t.push((b("attn_k_norm.weight"), vec![p.head_dim as u64]));
        }
        t.push((b("ffn_norm.weight"), vec![e]));
        t.push((b("ffn_gate.weight"), vec![e, f]));
        t.push((b("ffn_up.weight"), vec![e, f]));
        t.push((b("ffn_down.weight"), vec![f, e]));
    }
    t
}

/// Values of one tensor, generated row-parallel: norms near 1, biases small,
/// matrices uniform with std 1/sqrt(K) (embeddings: std ~0.6 so logits spread).
fn values(name: &str, ne: &[u64], seed: u64) -> Vec<f32> {
    let k = ne[0] as usize;
    let rows: usize = ne[1..].iter().product::<u64>() as usize;
    let is_norm = name.contains("norm");
    let is_bias = name.ends_with(".bias");
    let amp = if name == "token_embd.weight" || name == "output.weight" {
        1.0
    } else if is_bias {
        0.1
    } else {
        (3.0f32).sqrt() / (k as f32).sqrt()
    };
    let mut out = vec![0f32; k * rows];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk_rows = rows.div_ceil(threads).max(1);
    let base = hash(name, seed);
    // Each row has its own generator, so the values do not depend on how many threads
    // the machine has (a model made on the GPU machine equals one made here).
    std::thread::scope(|s| {
        for (ci, chunk) in out.chunks_mut(chunk_rows * k).enumerate() {
            s.spawn(move || {
                for (ri, row) in chunk.chunks_mut(k).enumerate() {
                    let r = (ci * chunk_rows + ri) as u64;
                    let mut rng = Rng(base ^ r.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    for v in row.iter_mut() {
                        let u = rng.uniform();
                        *v = if is_norm { 1.0 + 0.1 * u } else { amp * u };
                    }
                }
            });
        }
    });
    out
}

/// Quantizes `v` (rows of `k`) in parallel.
fn quantize_rows(ty: GgmlType, v: &[f32], k: usize) -> Result<Vec<u8>> {
    let rows = v.len() / k;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk_rows = rows.div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
        let hs: Vec<_> = v
            .chunks(chunk_rows * k)
            .map(|c| s.spawn(move || quant::quantize(ty, c)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("quantize worker"))
            .collect()
    });
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Writes the model to `path` (through a temporary file: nothing half-written).
pub fn generate(o: &GenOptions, path: &Path) -> Result<()> {
    // llama.cpp's qwen2 loader builds attn_q / attn_output as n_embd x n_embd, so it
    // needs n_head * head_dim == n_embd: keep head_dim, use fewer heads (same GQA ratio).
    let mut preset = o.preset;
    if o.arch == Arch::Qwen2 && preset.n_head * preset.head_dim != preset.n_embd {
        let ratio = preset.n_head / preset.n_head_kv;
        preset.n_head = (preset.n_embd / preset.head_dim).max(1);
        preset.n_head_kv = (preset.n_head / ratio).max(1);
    }
    let p = &preset;
    let a = o.arch.name();
    let tensors = tensor_list(o.arch, p);
    let mix = MixContext {
        arch: a.to_string(),
        n_layer: p.n_layer,
        n_head: p.n_head,
        n_head_kv: p.n_head_kv,
        n_expert: 0,
        has_output: !p.tied,
    };
    let mut w = GgufWriter::new();
    let key = |k: &str| format!("{a}.{k}");
    w.add("general.architecture", Value::Str(a.into()));
    w.add(
        "general.name",
        Value::Str(format!("vkgraph-{}-{}-{}", a, p.name, o.ftype.name())),
    );
    w.add("general.file_type", Value::U32(o.ftype.file_type()));
    w.add("general.quantization_version", Value::U32(2));
    w.add(&key("block_count"), Value::U32(p.n_layer as u32));
    w.add(&key("context_length"), Value::U32(4096));
    w.add(&key("embedding_length"), Value::U32(p.n_embd as u32));
    w.add(&key("feed_forward_length"), Value::U32(p.n_ff as u32));
    w.add(&key("attention.head_count"), Value::U32(p.n_head as u32));
    w.add(
        &key("attention.head_count_kv"),
        Value::U32(p.n_head_kv as u32),
    );
    w.add(&key("attention.key_length"), Value::U32(p.head_dim as u32));
    w.add(
        &key("attention.value_length"),
        Value::U32(p.head_dim as u32),
    );
    w.add(&key("rope.freq_base"), Value::F32(p.rope_base));
    w.add(&key("attention.layer_norm_rms_epsilon"), Value::F32(1e-6));
    let vocab = super::gen_vocab::vocab(p.n_vocab);
    w.add("tokenizer.ggml.model", Value::Str("gpt2".into()));
    w.add("tokenizer.ggml.pre", Value::Str("gpt-2".into()));
    w.add(
        "tokenizer.ggml.tokens",
        Value::Array(Array::Str(vocab.tokens)),
    );
    w.add(
        "tokenizer.ggml.token_type",
        Value::Array(Array::I32(vocab.types)),
    );
    w.add(
        "tokenizer.ggml.merges",
        Value::Array(Array::Str(vocab.merges)),
    );
    w.add("tokenizer.ggml.bos_token_id", Value::U32(vocab.bos));
    w.add("tokenizer.ggml.eos_token_id", Value::U32(vocab.eos));
    w.add("tokenizer.ggml.add_bos_token", Value::Bool(false));
    let mut types = Vec::new();
    for (name, ne) in &tensors {
        let ty = tensor_type(o.ftype, name, ne, &mix);
        types.push(ty);
        w.add_tensor(name, ty, ne)?;
    }
    w.write(
        path,
        |i: usize, info: &TensorInfo, out: &mut dyn std::io::Write| -> Result<()> {
            let (name, ne) = &tensors[i];
            let v = values(name, ne, o.seed);
            let bytes = quantize_rows(types[i], &v, ne[0] as usize)?;
            debug_assert_eq!(bytes.len() as u64, info.nbytes);
            out.write_all(&bytes).map_err(|e| Error::io(path, e))
        },
    )
}
