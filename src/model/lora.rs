//! LoRA adapters in llama.cpp's adapter GGUF format (`general.type = adapter`,
//! `adapter.type = lora`, `adapter.lora.alpha`, tensors `<weight>.lora_a` `[k, r]` and
//! `<weight>.lora_b` `[r, m]` for a base weight `<weight>` `[k, m]`).
//!
//! An adapter is applied as low-rank side matmuls added to the base matmul's output
//! (`model::build`): `y = W·x + s · B·(A·x)` with `s = scale · alpha / r` (`scale` alone when
//! the file has no alpha), as llama.cpp does. The base weights are untouched (mmap) and
//! stay fusable: the sibling pass fuses Q/K/V as before, and the adapters' A matrices,
//! which read the same activation, become siblings of their own.
//!
//! Invariants: every `lora_a` has its `lora_b` and a base weight of matching shape; the
//! adapter's architecture is the model's. Anything else is a typed error naming the file
//! and the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use crate::gguf::{GgufFile, TensorInfo};
use crate::{Error, Result};

/// The weights (per layer, without `.weight`) adapters may target: the dense layers'
/// projections.
pub const TARGETS: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// One loaded adapter.
pub struct LoraAdapter {
    pub file: GgufFile,
    /// The factor its `B·A` product is added with: `scale · alpha / r`.
    pub scale: f32,
    /// Adapted base weight name → (`lora_a` name, `lora_b` name, rank).
    pub targets: BTreeMap<String, (String, String, usize)>,
}

impl LoraAdapter {
    /// Maps `path` and checks it against the base model (`arch`, and `base(name)` giving
    /// a base weight's `[k, m]`).
    pub fn open(
        path: &Path,
        scale: f32,
        arch: &str,
        base: impl Fn(&str) -> Option<[u64; 2]>,
    ) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let bad = |what: String| Error::Metadata {
            key: format!("{}: general.type", path.display()),
            what,
        };
        match file.get_str("general.type") {
            Ok("adapter") => {}
            Ok(t) => {
                return Err(bad(format!(
                    "`{t}`, expected `adapter` (a LoRA adapter GGUF)"
                )))
            }
            Err(_) => return Err(bad("missing: not an adapter GGUF".into())),
        }
        if let Ok(t) = file.get_str("adapter.type") {
            if t != "lora" {
                return Err(Error::Unsupported(format!(
                    "{}: adapter.type `{t}` (only lora)",
                    path.display()
                )));
            }
        }
        let a_arch = file.arch()?;
        if a_arch != arch {
            return Err(Error::Metadata {
                key: format!("{}: general.architecture", path.display()),
                what: format!("`{a_arch}`, but the model is `{arch}`"),
            });
        }
        let alpha = file.get_f32_or("adapter.lora.alpha", 0.0)?;
        let tensor_err = |name: &str, what: String| Error::Tensor {
            tensor: format!("{}: {name}", path.display()),
            what,
        };
        let mut targets = BTreeMap::new();
        for t in &file.tensors {
            let Some(w) = t.name.strip_suffix(".lora_a") else {
                if !t.name.ends_with(".lora_b") {
                    return Err(tensor_err(&t.name, "not a .lora_a / .lora_b tensor".into()));
                }
                continue;
            };
            let b_name = format!("{w}.lora_b");
            let b = file
                .tensor(&b_name)
                .ok_or_else(|| tensor_err(&t.name, format!("has no {b_name}")))?;
            let [k, m] = base(w).ok_or_else(|| {
                tensor_err(
                    &t.name,
                    format!("adapts `{w}`, which the model does not have"),
                )
            })?;
            let dims = |i: &TensorInfo| {
                (
                    i.ne.first().copied().unwrap_or(1),
                    i.ne.get(1).copied().unwrap_or(1),
                )
            };
            let (ak, r) = dims(t);
            let (br, bm) = dims(b);
            if ak != k || br != r || bm != m || r == 0 {
                return Err(tensor_err(
                    &t.name,
                    format!(
                        "shapes lora_a [{ak}, {r}] / lora_b [{br}, {bm}] do not fit `{w}` [{k}, {m}]"
                    ),
                ));
            }
            targets.insert(w.to_string(), (t.name.clone(), b_name, r as usize));
        }
        if targets.is_empty() {
            return Err(tensor_err(
                "(none)",
                "the adapter has no lora_a tensors".into(),
            ));
        }
        // llama.cpp: scale · alpha / rank when alpha is set (one rank per adapter).
        let r = targets.values().next().map_or(1, |t| t.2);
        let scale = if alpha != 0.0 {
            scale * alpha / r as f32
        } else {
            scale
        };
        Ok(LoraAdapter {
            file,
            scale,
            targets,
        })
    }
}

/// Loads each `(path, scale)` against `model`'s weights.
pub fn load_all(
    model: &super::Model,
    list: &[(std::path::PathBuf, f32)],
) -> Result<Vec<LoraAdapter>> {
    let arch = model.hp.arch.name();
    list.iter()
        .map(|(p, s)| {
            LoraAdapter::open(p, *s, arch, |name| {
                let t = model.file.tensor(name)?;
                Some([t.ne.first().copied()?, t.ne.get(1).copied().unwrap_or(1)])
            })
        })
        .collect()
}
