//! Model hyper-parameters read from GGUF metadata under llama.cpp's key names
//! (`{arch}.block_count`, `{arch}.attention.head_count_kv`, ...).

use crate::gguf::GgufFile;
use crate::graph::RopeMode;
use crate::{Error, Result};

/// Architectures the graph builders know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    /// Qwen3's attention with a mixture-of-experts FFN (Qwen3-30B-A3B): a router
    /// (`ffn_gate_inp`), `expert_count` SwiGLU experts stacked in 3-D tensors
    /// (`ffn_{gate,up,down}_exps`), `expert_used_count` of them per token.
    Qwen3Moe,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "llama" => Ok(Arch::Llama),
            "qwen2" => Ok(Arch::Qwen2),
            "qwen3" => Ok(Arch::Qwen3),
            "qwen3moe" => Ok(Arch::Qwen3Moe),
            _ => Err(Error::Unsupported(format!(
                "architecture `{s}` (supported: llama, qwen2, qwen3, qwen3moe)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Qwen3Moe => "qwen3moe",
        }
    }

    /// Whether Q and K are RMS-normalized per head (`attn_q_norm`, `attn_k_norm`).
    pub fn has_qk_norm(self) -> bool {
        matches!(self, Arch::Qwen3 | Arch::Qwen3Moe)
    }

    /// Whether the FFN is a mixture of experts.
    pub fn is_moe(self) -> bool {
        self == Arch::Qwen3Moe
    }

    /// llama.cpp's rope type for the architecture.
    pub fn rope_mode(self) -> RopeMode {
        match self {
            Arch::Llama => RopeMode::Normal,
            Arch::Qwen2 | Arch::Qwen3 | Arch::Qwen3Moe => RopeMode::Neox,
        }
    }
}

/// Hyper-parameters of a decoder-only transformer.
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    pub arch: Arch,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per-head size of Q and K (`{arch}.attention.key_length`).
    pub head_dim: usize,
    /// Per-head size of V (`{arch}.attention.value_length`).
    pub head_dim_v: usize,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    pub rope_scale: f32,
    pub n_rot: usize,
    /// Mixture of experts (0 for a dense FFN): experts per layer, experts used per
    /// token, and each expert's FFN width.
    pub n_expert: usize,
    pub n_expert_used: usize,
    pub n_ff_exp: usize,
}

impl HParams {
    /// Reads the hyper-parameters; `n_vocab` comes from `token_embd.weight`.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch = Arch::parse(f.arch()?)?;
        let a = arch.name();
        let key = |k: &str| format!("{a}.{k}");
        let n_embd = f.get_u32(&key("embedding_length"))? as usize;
        let n_head = f.get_u32(&key("attention.head_count"))? as usize;
        if n_head == 0 || n_embd == 0 {
            return Err(Error::Metadata {
                key: key("attention.head_count"),
                what: "must be positive".into(),
            });
        }
        let n_head_kv = f.get_u32_or(&key("attention.head_count_kv"), n_head as u32)? as usize;
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::Metadata {
                key: key("attention.head_count_kv"),
                what: format!("{n_head_kv} does not divide head_count {n_head}"),
            });
        }
        let head_dim =
            f.get_u32_or(&key("attention.key_length"), (n_embd / n_head) as u32)? as usize;
        let head_dim_v = f.get_u32_or(&key("attention.value_length"), head_dim as u32)? as usize;
        if head_dim_v != head_dim {
            return Err(Error::Unsupported(format!(
                "{}: value_length {head_dim_v} != key_length {head_dim}",
                key("attention.value_length")
            )));
        }
        let emb = f.tensor("token_embd.weight").ok_or_else(|| Error::Tensor {
            tensor: "token_embd.weight".into(),
            what: "missing".into(),
        })?;
        let n_vocab = emb.ne.get(1).copied().unwrap_or(1) as usize;
        let scaling = f.get(&key("rope.scaling.factor")).and_then(|v| v.as_f32());
        let rope_scale = match scaling {
            Some(s) if s > 0.0 => 1.0 / s,
            _ => 1.0,
        };
        // RoPE rotates pairs within a head: the rotated dimensions must be an even number
        // no larger than the head (the CPU and Vulkan kernels index by it).
        let n_rot = f.get_u32_or(&key("rope.dimension_count"), head_dim as u32)? as usize;
        if n_rot == 0 || n_rot > head_dim || n_rot % 2 != 0 {
            return Err(Error::Metadata {
                key: key("rope.dimension_count"),
                what: format!(
                    "{n_rot} must be even, positive and at most the head size {head_dim}"
                ),
            });
        }
        let (mut n_expert, mut n_expert_used, mut n_ff_exp) = (0, 0, 0);
        if arch.is_moe() {
            n_expert = f.get_u32(&key("expert_count"))? as usize;
            n_expert_used = f.get_u32(&key("expert_used_count"))? as usize;
            n_ff_exp = f.get_u32(&key("expert_feed_forward_length"))? as usize;
            if n_expert_used == 0 || n_expert_used > n_expert || n_expert > 1024 {
                return Err(Error::Metadata {
                    key: key("expert_used_count"),
                    what: format!(
                        "{n_expert_used} experts used of {n_expert} (need 1..=expert_count, \
                         at most 1024 experts)"
                    ),
                });
            }
            if n_ff_exp == 0 {
                return Err(Error::Metadata {
                    key: key("expert_feed_forward_length"),
                    what: "must be positive".into(),
                });
            }
        }
        let n_ff = if arch.is_moe() {
            f.get_u32_or(&key("feed_forward_length"), n_ff_exp as u32)? as usize
        } else {
            f.get_u32(&key("feed_forward_length"))? as usize
        };
        Ok(HParams {
            arch,
            n_layer: f.get_u32(&key("block_count"))? as usize,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            n_vocab,
            n_ctx_train: f.get_u32_or(&key("context_length"), 4096)? as usize,
            rms_eps: f.get_f32_or(&key("attention.layer_norm_rms_epsilon"), 1e-5)?,
            rope_base: f.get_f32_or(&key("rope.freq_base"), 10000.0)?,
            rope_scale,
            n_rot,
            n_expert,
            n_expert_used,
            n_ff_exp,
        })
    }
}
