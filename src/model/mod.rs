//! Models: hyper-parameters from GGUF metadata ([`hparams`]), the forward-pass graph
//! builder for llama / qwen2 / qwen3 ([`build`]), llama-quantize's per-tensor type
//! choices ([`quant_mix`]) and the random-weight model generator ([`gen`]).

pub mod build;
pub mod gen;
mod gen_vocab;
pub mod hparams;
pub mod lora;
pub mod quant_mix;

pub use build::{build_graph, BuildOpts};
pub use hparams::{Arch, HParams};

use std::path::Path;

use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// A loaded (mapped) model: the GGUF file and its hyper-parameters, checked for
/// every tensor the graph builder will reference.
pub struct Model {
    pub file: GgufFile,
    pub hp: HParams,
    /// LoRA adapters applied by the graph builder ([`lora`]), in `--lora` order.
    pub adapters: Vec<lora::LoraAdapter>,
}

impl Model {
    /// Maps `path` and checks that every tensor the forward pass needs exists with
    /// the expected shape.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_file(GgufFile::open(path)?)
    }

    pub fn from_file(file: GgufFile) -> Result<Self> {
        let hp = HParams::from_gguf(&file)?;
        let m = Model {
            file,
            hp,
            adapters: Vec::new(),
        };
        m.check_tensors()?;
        Ok(m)
    }

    /// [`Model::open`] with LoRA adapters `(path, scale)` (`--lora`, `--lora-scale`).
    pub fn open_with_lora(
        path: impl AsRef<Path>,
        adapters: &[(std::path::PathBuf, f32)],
    ) -> Result<Self> {
        let mut m = Self::open(path)?;
        m.adapters = lora::load_all(&m, adapters)?;
        Ok(m)
    }

    /// The tensor named `name` (the model's, else an adapter's), or a typed error naming it.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.locate(name)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::Tensor {
                tensor: name.into(),
                what: format!("missing from {}", self.file.path.display()),
            })
    }

    /// The bytes of tensor `name` (zero-copy from the model's or an adapter's mmap).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let (f, t) = self.locate(name).ok_or_else(|| Error::Tensor {
            tensor: name.into(),
            what: format!("missing from {}", self.file.path.display()),
        })?;
        Ok(f.tensor_data(t))
    }

    fn locate(&self, name: &str) -> Option<(&GgufFile, &TensorInfo)> {
        if let Some(t) = self.file.tensor(name) {
            return Some((&self.file, t));
        }
        self.adapters
            .iter()
            .find_map(|a| a.file.tensor(name).map(|t| (&a.file, t)))
    }

    /// Whether the file has `name`.
    pub fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_some()
    }

    /// Name of the output projection: `output.weight`, or the token embedding when
    /// the embeddings are tied (SmolLM2).
    pub fn output_name(&self) -> &'static str {
        if self.has("output.weight") {
            "output.weight"
        } else {
            "token_embd.weight"
        }
    }

    fn expect(&self, name: &str, ne: &[usize]) -> Result<()> {
        let t = self.tensor(name)?;
        let got: Vec<usize> = t.ne.iter().map(|&d| d as usize).collect();
        let mut want = ne.to_vec();
        while want.len() < got.len() {
            want.push(1);
        }
        if got != want {
            return Err(Error::Tensor {
                tensor: name.into(),
                what: format!("shape {got:?}, expected {want:?}"),
            });
        }
        if t.ty == GgmlType::I32 {
            return Err(Error::Tensor {
                tensor: name.into(),
                what: "i32 is not a weight type".into(),
            });
        }
        Ok(())
    }

    fn check_tensors(&self) -> Result<()> {
        let hp = &self.hp;
        let (e, f) = (hp.n_embd, hp.n_ff);
        let q = hp.n_head * hp.head_dim;
        let kv = hp.n_head_kv * hp.head_dim;
        self.expect("token_embd.weight", &[e, hp.n_vocab])?;
        self.expect("output_norm.weight", &[e])?;
        if self.has("output.weight") {
            self.expect("output.weight", &[e, hp.n_vocab])?;
        }
        for il in 0..hp.n_layer {
            let b = |s: &str| format!("blk.{il}.{s}");
            self.expect(&b("attn_norm.weight"), &[e])?;
            if self.has(&b("attn_qkv.weight")) {
                self.expect(&b("attn_qkv.weight"), &[e, q + 2 * kv])?;
            } else {
                self.expect(&b("attn_q.weight"), &[e, q])?;
                self.expect(&b("attn_k.weight"), &[e, kv])?;
                self.expect(&b("attn_v.weight"), &[e, kv])?;
            }
            self.expect(&b("attn_output.weight"), &[q, e])?;
            if hp.arch == Arch::Qwen2 {
                self.expect(&b("attn_q.bias"), &[q])?;
                self.expect(&b("attn_k.bias"), &[kv])?;
                self.expect(&b("attn_v.bias"), &[kv])?;
            }
            if hp.arch.has_qk_norm() {
                self.expect(&b("attn_q_norm.weight"), &[hp.head_dim])?;
                self.expect(&b("attn_k_norm.weight"), &[hp.head_dim])?;
            }
            self.expect(&b("ffn_norm.weight"), &[e])?;
            if hp.arch.is_moe() {
                let (x, fe) = (hp.n_expert, hp.n_ff_exp);
                self.expect(&b("ffn_gate_inp.weight"), &[e, x])?;
                self.expect(&b("ffn_gate_exps.weight"), &[e, fe, x])?;
                self.expect(&b("ffn_up_exps.weight"), &[e, fe, x])?;
                self.expect(&b("ffn_down_exps.weight"), &[fe, e, x])?;
                continue;
            }
            self.expect(&b("ffn_gate.weight"), &[e, f])?;
            self.expect(&b("ffn_up.weight"), &[e, f])?;
            self.expect(&b("ffn_down.weight"), &[f, e])?;
        }
        Ok(())
    }
}
