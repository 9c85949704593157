//! Shared by the integration tests: tiny generated models (written once per process
//! into the system temp dir; generation is deterministic, so a cached file is the same
//! file) and comparison helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use vkgraph::model::gen::{generate, GenOptions, Preset};
use vkgraph::model::quant_mix::Ftype;
use vkgraph::model::{Arch, Model};

/// Path of the tiny `arch` model in scheme `quant` (generated on first use): preset
/// `tiny`, or `tiny-moe` for qwen3moe.
pub fn tiny(arch: &str, quant: &str) -> PathBuf {
    let o = GenOptions {
        arch: Arch::parse(arch).unwrap(),
        preset: Preset::find(if arch == "qwen3moe" {
            "tiny-moe"
        } else {
            "tiny"
        })
        .unwrap(),
        ftype: Ftype::parse(quant).unwrap(),
        seed: 42,
    };
    generated(&format!("tiny-{arch}-{quant}.gguf"), &o)
}

/// Path of the model `o` generates, as `file` in the test-model directory (generated on
/// first use; `file` must name `o` uniquely).
pub fn generated(file: &str, o: &GenOptions) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vkgraph-test-models-g{}",
        vkgraph::model::gen::GENERATOR_VERSION
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    // Tests run on several threads; generate each file once (the writer's temporary
    // file name is per path).
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        generate(o, &path).unwrap();
    }
    path
}

/// The tiny `arch` model, opened.
pub fn tiny_model(arch: &str, quant: &str) -> Arc<Model> {
    Arc::new(Model::open(tiny(arch, quant)).unwrap())
}

/// Normalized mean squared error of `a` against the reference `b`.
pub fn nmse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    num / den.max(1e-30)
}

/// A fixed prompt of token ids inside the tiny vocabulary.
pub fn prompt(n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 37 + 11) % 300) as u32).collect()
}

/// Index of the largest logit (the greedy token).
pub fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
        .0 as u32
}
