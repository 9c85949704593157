//! `--fit`: how many layers fit on the GPU (llama.cpp's `-fit`). The model's weights are
//! counted per layer (`blk.N.*`, the model's and its LoRA adapters'), plus each layer's KV
//! cache for the context (K and V rows of `n_head_kv · head_dim` f16 values per cell) and
//! the output head; a margin is kept for activations and scratch. The result is a
//! [`super::Placement`] as `-ngl N` gives: the last N layers on the GPU (N above the layer
//! count: the output head too), the rest on the CPU.

use crate::model::Model;

/// What `--fit` decided, for the message the CLI prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    /// `-ngl` equivalent: 0 (nothing fits) ..= n_layer + 1 (everything, head included).
    pub gpu_layers: usize,
    /// Bytes the chosen placement puts on the device, and the device's usable budget.
    pub bytes: u64,
    pub budget: u64,
}

/// Bytes kept free for activations, attention scratch and q8 copies: 5 % of the budget,
/// at least 64 MiB.
pub fn margin(budget: u64) -> u64 {
    (budget / 20).max(64 << 20)
}

/// The most layers (from the last) whose weights and KV cache for `n_ctx` fit `budget`
/// device bytes, keeping [`margin`] free.
pub fn fit(model: &Model, n_ctx: usize, budget: u64) -> Fit {
    let hp = &model.hp;
    let mut per_layer = vec![0u64; hp.n_layer];
    let mut other = 0u64;
    let mut count = |name: &str, bytes: u64| match name
        .strip_prefix("blk.")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(l) if l < hp.n_layer => per_layer[l] += bytes,
        _ => other += bytes,
    };
    // The token embedding stays on the CPU (GET_ROWS of a few rows) unless it is the head.
    let tied = model.output_name() == "token_embd.weight";
    for t in &model.file.tensors {
        if t.name != "token_embd.weight" || tied {
            count(&t.name, t.nbytes);
        }
    }
    for a in &model.adapters {
        for t in &a.file.tensors {
            count(&t.name, t.nbytes);
        }
    }
    let kv = 2 * (n_ctx * hp.n_head_kv * hp.head_dim * 2) as u64;
    let usable = budget.saturating_sub(margin(budget));
    let all: u64 = per_layer.iter().map(|b| b + kv).sum::<u64>() + other;
    if all <= usable {
        return Fit {
            gpu_layers: hp.n_layer + 1,
            bytes: all,
            budget,
        };
    }
    let mut bytes = 0u64;
    let mut n = 0;
    for l in (0..hp.n_layer).rev() {
        let need = per_layer[l] + kv;
        if bytes + need > usable {
            break;
        }
        bytes += need;
        n += 1;
    }
    Fit {
        gpu_layers: n,
        bytes,
        budget,
    }
}
