//! llama-quantize's per-tensor type choice ("quant mix"), so that `gen-model --quant
//! q4_k_m` produces the same tensor types as `llama-quantize model-f16.gguf q4_k_m`.
//!
//! Facts reproduced from llama.cpp (`src/llama-quant.cpp`, read, not copied):
//! - each ftype has a default type (`q4_k_m` → q4_K, `q2_k` → q2_K, ...);
//! - only tensors that are at least 2-D, named `*weight`, and not norms / router
//!   (`ffn_gate_inp`) / positional tables are quantized; the rest keep their source
//!   type, which for a convert_hf_to_gguf F16 model is f32;
//! - for the K-quant mixes, `output.weight` becomes q6_K (q8_0 when its row length is
//!   not a multiple of the default type's block), and when the model has no
//!   `output.weight` (tied embeddings) `token_embd.weight` is treated as the output;
//! - `attn_v` and `ffn_down` get more bits in some layers, chosen by
//!   [`use_more_bits`]: the first and last eighth of the layers and every third layer
//!   between them; `attn_output` and `ffn_down` get more bits in q2_K;
//! - a type whose block does not divide the row length falls back to a legacy type
//!   (q4_K → q5_0, q5_K → q5_1, q6_K → q8_0, q2_K / q3_K → q4_0), else to f16.
//!
//! Invariant: [`tensor_type`] is a pure function of (ftype, name, shape, model
//! hyper-parameters). llama-quantize keeps counters (`i_attention_wv`, `i_ffn_down`)
//! while walking tensors, but it walks them sorted by (layer, name) and every layer of
//! the supported archs has exactly one attn_v and one dense ffn_down (it asserts the
//! attn_v count), so each counter equals the layer index in the tensor's name; for MoE
//! models llama.cpp itself parses the layer from the name. Taking the layer from the
//! name makes the result independent of the order in which a caller asks.
//!
//! Deviation: llama.cpp before early 2025 fell back from q2_K / q3_K to iq4_nl;
//! vkgraph has no iq4_nl and follows current llama.cpp (q4_0). Where llama.cpp would
//! abort (a legacy 32-block type on a row that is not a multiple of 32) this returns f16.

use crate::quant::GgmlType;
use crate::{Error, Result};

/// A llama-quantize ftype name (`q4_k_m`, ...) or `pure-TYPE`, which gives every
/// quantizable tensor the same TYPE (llama-quantize `--pure`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ftype {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K_S,
    Q3_K_M,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
    Pure(GgmlType),
}

impl Ftype {
    /// The named ftypes, in the order `--help` lists them.
    pub const ALL: [Ftype; 16] = [
        Ftype::F32,
        Ftype::F16,
        Ftype::BF16,
        Ftype::Q4_0,
        Ftype::Q4_1,
        Ftype::Q5_0,
        Ftype::Q5_1,
        Ftype::Q8_0,
        Ftype::Q2_K,
        Ftype::Q3_K_S,
        Ftype::Q3_K_M,
        Ftype::Q4_K_S,
        Ftype::Q4_K_M,
        Ftype::Q5_K_S,
        Ftype::Q5_K_M,
        Ftype::Q6_K,
    ];

    /// Parses a name case-insensitively: `q4_k_m`, `Q4_K_M`, llama-quantize's aliases
    /// `q3_k` / `q4_k` / `q5_k` (the `_m` mixes), or `pure-q4_K`.
    pub fn parse(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        if let Some(ty) = lower.strip_prefix("pure-") {
            return match GgmlType::from_name(ty) {
                Some(t) if GgmlType::WEIGHT_TYPES.contains(&t) => Ok(Ftype::Pure(t)),
                _ => Err(Error::Usage(format!(
                    "unknown type `{ty}` in quant `{s}`; {}",
                    Self::valid_names()
                ))),
            };
        }
        let alias = match lower.as_str() {
            "q3_k" => Some(Ftype::Q3_K_M),
            "q4_k" => Some(Ftype::Q4_K_M),
            "q5_k" => Some(Ftype::Q5_K_M),
            _ => None,
        };
        alias
            .or_else(|| Self::ALL.into_iter().find(|f| f.name() == lower))
            .ok_or_else(|| Error::Usage(format!("unknown quant `{s}`; {}", Self::valid_names())))
    }

    /// The list for error messages and `--help`.
    pub fn valid_names() -> String {
        format!(
            "valid: {}, or pure-TYPE with TYPE one of {}",
            Self::ALL.map(|f| f.name()).join(", "),
            GgmlType::WEIGHT_TYPES.map(|t| t.name()).join(", ")
        )
    }

    /// The canonical name: `q4_k_m`, `f16`, `pure-q4_K` (ggml's type name after `pure-`).
    pub fn name(&self) -> String {
        let s = match self {
            Ftype::F32 => "f32",
            Ftype::F16 => "f16",
            Ftype::BF16 => "bf16",
            Ftype::Q4_0 => "q4_0",
            Ftype::Q4_1 => "q4_1",
            Ftype::Q5_0 => "q5_0",
            Ftype::Q5_1 => "q5_1",
            Ftype::Q8_0 => "q8_0",
            Ftype::Q2_K => "q2_k",
            Ftype::Q3_K_S => "q3_k_s",
            Ftype::Q3_K_M => "q3_k_m",
            Ftype::Q4_K_S => "q4_k_s",
            Ftype::Q4_K_M => "q4_k_m",
            Ftype::Q5_K_S => "q5_k_s",
            Ftype::Q5_K_M => "q5_k_m",
            Ftype::Q6_K => "q6_k",
            Ftype::Pure(t) => return format!("pure-{}", t.name()),
        };
        s.to_string()
    }

    /// llama.cpp's `LLAMA_FTYPE_*` id, written to `general.file_type`. A pure type
    /// maps to the id llama.cpp's loader guesses for a file mostly of that type.
    pub fn file_type(&self) -> u32 {
        match self {
            Ftype::F32 | Ftype::Pure(GgmlType::F32) => 0,
            Ftype::F16 | Ftype::Pure(GgmlType::F16) => 1,
            Ftype::Q4_0 | Ftype::Pure(GgmlType::Q4_0) => 2,
            Ftype::Q4_1 | Ftype::Pure(GgmlType::Q4_1) => 3,
            Ftype::Q8_0 | Ftype::Pure(GgmlType::Q8_0) => 7,
            Ftype::Q5_0 | Ftype::Pure(GgmlType::Q5_0) => 8,
            Ftype::Q5_1 | Ftype::Pure(GgmlType::Q5_1) => 9,
            Ftype::Q2_K | Ftype::Pure(GgmlType::Q2K) => 10,
            Ftype::Q3_K_S => 11,
            Ftype::Q3_K_M | Ftype::Pure(GgmlType::Q3K) => 12,
            Ftype::Q4_K_S => 14,
            Ftype::Q4_K_M | Ftype::Pure(GgmlType::Q4K) => 15,
            Ftype::Q5_K_S => 16,
            Ftype::Q5_K_M | Ftype::Pure(GgmlType::Q5K) => 17,
            Ftype::Q6_K | Ftype::Pure(GgmlType::Q6K) => 18,
            Ftype::BF16 | Ftype::Pure(GgmlType::BF16) => 32,
            // Not a weight type (parse rejects it); "all f32" is the closest honest id.
            Ftype::Pure(GgmlType::I32) => 0,
        }
    }

    /// The type most tensors get (llama.cpp's `llama_ftype_get_default_type`).
    pub fn default_type(&self) -> GgmlType {
        match self {
            Ftype::F32 => GgmlType::F32,
            Ftype::F16 => GgmlType::F16,
            Ftype::BF16 => GgmlType::BF16,
            Ftype::Q4_0 => GgmlType::Q4_0,
            Ftype::Q4_1 => GgmlType::Q4_1,
            Ftype::Q5_0 => GgmlType::Q5_0,
            Ftype::Q5_1 => GgmlType::Q5_1,
            Ftype::Q8_0 => GgmlType::Q8_0,
            Ftype::Q2_K => GgmlType::Q2K,
            Ftype::Q3_K_S | Ftype::Q3_K_M => GgmlType::Q3K,
            Ftype::Q4_K_S | Ftype::Q4_K_M => GgmlType::Q4K,
            Ftype::Q5_K_S | Ftype::Q5_K_M => GgmlType::Q5K,
            Ftype::Q6_K => GgmlType::Q6K,
            Ftype::Pure(t) => *t,
        }
    }
}

impl std::fmt::Display for Ftype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The model hyper-parameters the mix rules look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixContext {
    /// `general.architecture`: `llama`, `qwen2`, `qwen3`, `qwen3moe`, ... (`falcon`
    /// has its own rules).
    pub arch: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Experts per MoE layer; 0 for dense models.
    pub n_expert: usize,
    /// Whether the model has its own `output.weight`; false means tied embeddings,
    /// and `token_embd.weight` is then quantized like the output.
    pub has_output: bool,
}

impl MixContext {
    /// Query heads per KV head (llama.cpp's `n_gqa`, 0 when there are no KV heads).
    fn n_gqa(&self) -> usize {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }

    /// llama.cpp's `LLM_TYPE_70B`, which the attn_v rule looks at: an 80-layer
    /// GQA llama or an 80-layer qwen2.
    fn is_70b(&self) -> bool {
        self.n_layer == 80
            && ((self.arch == "llama" && self.n_expert == 0 && self.n_head != self.n_head_kv)
                || self.arch == "qwen2")
    }
}

/// Which rule family a tensor falls under (by name, as llama.cpp matches them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    Output,
    /// attn_v, and the tensors that contain V: attn_qkv, attn_kv_b.
    AttnV,
    AttnK,
    AttnOutput,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        Category::TokenEmbd
    } else if ["attn_qkv.weight", "attn_kv_b.weight", "attn_v.weight"]
        .iter()
        .any(|p| name.contains(p))
    {
        Category::AttnV
    } else if name.contains("attn_k.weight") {
        Category::AttnK
    } else if name.contains("attn_output.weight") {
        Category::AttnOutput
    } else if name.contains("ffn_down") {
        Category::FfnDown
    } else {
        // attn_q, ffn_gate, ffn_up: only the IQ mixes (not offered) treat them specially.
        Category::Other
    }
}

/// ggml's `n_dims`: 1 + the index of the last dimension larger than 1 (at least 1).
fn n_dims(ne: &[u64]) -> usize {
    ne.iter().rposition(|&n| n > 1).map_or(1, |i| i + 1)
}

/// Whether llama-quantize quantizes this tensor at all (the subset of its rules that
/// concerns the text architectures vkgraph knows).
fn is_quantizable(name: &str, ne: &[u64]) -> bool {
    const KEEP: [&str; 6] = [
        "_norm.weight",
        "ffn_gate_inp.weight",
        "position_embd.weight",
        "token_types.weight",
        "ssm_conv1d",
        "attn_rel_b.weight",
    ];
    n_dims(ne) >= 2 && name.ends_with("weight") && !KEEP.iter().any(|k| name.contains(k))
}

/// llama.cpp's choice of layers that get a bigger type in the `_M` mixes: the first
/// and last eighth of the layers, and every third layer in between.
pub fn use_more_bits(i_layer: usize, n_layer: usize) -> bool {
    let (i, n) = (i_layer as i64, n_layer as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The layer index in `blk.N.…`, 0 for names outside a block.
fn layer_of(name: &str) -> usize {
    name.strip_prefix("blk.")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The type llama-quantize would give this tensor when quantizing an F16 model to
/// `ftype`. `ne` is the GGUF shape (`ne[0]` = row length). Tensors it leaves alone
/// (1-D, norms, the MoE router) are f32, as convert_hf_to_gguf writes them. The
/// result does not depend on the order of calls (see the module docs).
pub fn tensor_type(ftype: Ftype, name: &str, ne: &[u64], ctx: &MixContext) -> GgmlType {
    if !is_quantizable(name, ne) {
        return GgmlType::F32;
    }
    let default = ftype.default_type();
    if !default.is_quantized() {
        return default;
    }
    let chosen = match ftype {
        Ftype::Pure(_) => default,
        _ => mix_type(ftype, default, name, ne, ctx),
    };
    fallback(chosen, ne.first().copied().unwrap_or(0))
}

/// llama.cpp's `llama_tensor_get_type_impl`, restricted to the ftypes [`Ftype`] offers.
fn mix_type(ftype: Ftype, default: GgmlType, name: &str, ne: &[u64], ctx: &MixContext) -> GgmlType {
    use GgmlType as T;
    let cat = category(name);
    let n_layer = ctx.n_layer;
    let i_layer = layer_of(name);
    let nx = ne.first().copied().unwrap_or(0);

    let is_output = cat == Category::Output || (!ctx.has_output && cat == Category::TokenEmbd);
    if is_output {
        // The block check uses the default type's block, not q6_K's; a row that fits the
        // default but not q6_K is fixed by the fallback afterwards.
        return if ctx.is_falcon() || nx % default.block_size() as u64 != 0 {
            T::Q8_0
        } else if default != T::Q8_0 {
            T::Q6K
        } else {
            default
        };
    }

    match cat {
        Category::AttnV => {
            let mut t = match ftype {
                Ftype::Q2_K if ctx.n_gqa() >= 4 => T::Q4K,
                Ftype::Q2_K => T::Q3K,
                Ftype::Q3_K_M if i_layer < 2 => T::Q5K,
                Ftype::Q3_K_M => T::Q4K,
                Ftype::Q4_K_M | Ftype::Q5_K_M if use_more_bits(i_layer, n_layer) => T::Q6K,
                Ftype::Q4_K_S if i_layer < 4 => T::Q5K,
                _ => default,
            };
            // 70B: 8 query heads share each V head, so V is small and worth more bits.
            if ctx.is_70b() && matches!(t, T::Q3K | T::Q4K) {
                t = T::Q5K;
            }
            if ctx.n_expert == 8 {
                t = T::Q8_0;
            }
            t
        }
        Category::AttnK if ctx.n_expert == 8 => T::Q8_0,
        Category::FfnDown => {
            let falcon = ctx.is_falcon();
            match ftype {
                Ftype::Q2_K => T::Q3K,
                Ftype::Q3_K_M if i_layer < n_layer / 16 => T::Q5K,
                Ftype::Q3_K_M if !falcon || use_more_bits(i_layer, n_layer) => T::Q4K,
                Ftype::Q3_K_M => T::Q3K,
                Ftype::Q4_K_M if falcon && i_layer < n_layer / 16 => T::Q6K,
                Ftype::Q4_K_M if falcon && use_more_bits(i_layer, n_layer) => T::Q5K,
                Ftype::Q4_K_M if !falcon && use_more_bits(i_layer, n_layer) => T::Q6K,
                Ftype::Q5_K_M if use_more_bits(i_layer, n_layer) => T::Q6K,
                Ftype::Q4_K_S if !falcon && i_layer < n_layer / 8 => T::Q5K,
                _ => default,
            }
        }
        Category::AttnOutput if !ctx.is_falcon() => {
            if ctx.n_expert == 8 {
                match ftype {
                    Ftype::Q2_K | Ftype::Q3_K_S | Ftype::Q3_K_M | Ftype::Q4_K_S | Ftype::Q4_K_M => {
                        T::Q5K
                    }
                    _ => default,
                }
            } else {
                match ftype {
                    Ftype::Q2_K => T::Q3K,
                    Ftype::Q3_K_M => T::Q4K,
                    _ => default,
                }
            }
        }
        _ => default,
    }
}

/// llama.cpp's fallback for a row length `nx` the chosen type's block does not divide.
fn fallback(t: GgmlType, nx: u64) -> GgmlType {
    use GgmlType as T;
    if nx % t.block_size() as u64 == 0 {
        return t;
    }
    let alt = match t {
        T::Q2K | T::Q3K => T::Q4_0,
        T::Q4K => T::Q5_0,
        T::Q5K => T::Q5_1,
        T::Q6K => T::Q8_0,
        // llama.cpp aborts here (no fallback for a 32-block type); f16 always fits.
        _ => T::F16,
    };
    if nx % alt.block_size() as u64 == 0 {
        alt
    } else {
        T::F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_more_bits_matches_llama_cpp_for_28_layers() {
        // n/8 = 3, 7n/8 = 24: layers 0-2, 24-27 and 5, 8, ..., 23.
        let picked: Vec<usize> = (0..28).filter(|&i| use_more_bits(i, 28)).collect();
        assert_eq!(picked, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
    }

    #[test]
    fn n_dims_ignores_trailing_ones() {
        assert_eq!(n_dims(&[1024, 1, 1, 1]), 1);
        assert_eq!(n_dims(&[1024, 3072]), 2);
        assert_eq!(n_dims(&[1, 5]), 2);
        assert_eq!(n_dims(&[]), 1);
    }

    #[test]
    fn layer_of_parses_block_names() {
        assert_eq!(layer_of("blk.17.ffn_down.weight"), 17);
        assert_eq!(layer_of("output.weight"), 0);
    }
}
