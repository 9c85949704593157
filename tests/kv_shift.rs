//! Context shift (`Session::shift_seq`, llama.cpp's K-shift): on a one-layer model a
//! cached K/V row depends only on its token and position, so after keeping `KEEP` tokens,
//! dropping `DISCARD` and moving the rest down (K re-roped), the next token's logits must
//! equal those of a fresh session that saw only the kept tokens — on the CPU and on every
//! Vulkan device (validated), for llama's and qwen3's RoPE (qwen3 with its K-norm). On
//! the two-layer tiny models the shifted cache of a Vulkan session matches the CPU's (the
//! same logits afterwards), and a shift the cache cannot do is an error that changes
//! nothing.

mod common;
mod models;

use std::sync::Arc;

use models::{argmax, generated, nmse, prompt, tiny_model};
use vkgraph::model::gen::{GenOptions, Preset};
use vkgraph::model::quant_mix::Ftype;
use vkgraph::model::{Arch, Model};
use vkgraph::sched::session::Session;

const KEEP: usize = 3;
const DISCARD: usize = 5;
const N_PROMPT: usize = 14;

/// The tiny preset with one layer, f16.
fn one_layer(arch: &str) -> Arc<Model> {
    let o = GenOptions {
        arch: Arch::parse(arch).unwrap(),
        preset: Preset {
            n_layer: 1,
            ..Preset::find("tiny").unwrap()
        },
        ftype: Ftype::parse("f16").unwrap(),
        seed: 7,
    };
    Arc::new(Model::open(generated(&format!("tiny1-{arch}-f16.gguf"), &o)).unwrap())
}

fn session(m: &Arc<Model>, dev: Option<usize>) -> Session {
    common::session(m, dev, 32, 1)
}

/// Logits of `next` after `tokens` with a shift, and after only the kept tokens.
fn shifted_and_fresh(m: &Arc<Model>, dev: Option<usize>, next: u32) -> (Vec<f32>, Vec<f32>) {
    let p = prompt(N_PROMPT);
    let mut a = session(m, dev);
    a.forward(&p, false).unwrap();
    a.shift_seq(0, KEEP, DISCARD).unwrap();
    assert_eq!(a.n_past(), N_PROMPT - DISCARD);
    let shifted = a.forward(&[next], false).unwrap();
    let kept: Vec<u32> = p[..KEEP]
        .iter()
        .chain(&p[KEEP + DISCARD..])
        .copied()
        .collect();
    let mut b = session(m, dev);
    b.forward(&kept, false).unwrap();
    (shifted, b.forward(&[next], false).unwrap())
}

/// `check` on the CPU alone (`None`) and on every Vulkan device (then its validation
/// log must be clean).
fn on_every_target(test: &str, check: impl Fn(Option<usize>, &str)) {
    check(None, &format!("[CPU] {test}"));
    for gpu in common::devices() {
        let label = gpu.case(test);
        check(Some(gpu.ctx.caps().index), &label);
        gpu.assert_clean(&label);
    }
}

#[test]
fn a_shifted_cache_equals_the_kept_tokens_cache() {
    for arch in ["llama", "qwen3"] {
        let m = one_layer(arch);
        on_every_target(&format!("kv_shift {arch}"), |dev, label| {
            let (shifted, fresh) = shifted_and_fresh(&m, dev, 77);
            let e = nmse(&shifted, &fresh);
            // The re-roped K is rounded to f16 once more; nothing else differs.
            assert!(e < 1e-5, "{label}: shifted vs fresh NMSE {e:.3e}");
            assert_eq!(argmax(&shifted), argmax(&fresh), "{label}");
            eprintln!("{label}: shifted vs fresh NMSE {e:.3e}");
        });
    }
}

#[test]
fn a_shift_on_vulkan_matches_the_cpu() {
    for arch in ["llama", "qwen3"] {
        let m = tiny_model(arch, "q8_0");
        let run = |dev: Option<usize>| {
            let mut s = session(&m, dev);
            s.forward(&prompt(N_PROMPT), false).unwrap();
            s.shift_seq(0, KEEP, DISCARD).unwrap();
            let mut out = vec![s.forward(&[5], false).unwrap()];
            // A second shift (dropping to the kept prefix's end) and more tokens.
            s.shift_seq(0, 1, 2).unwrap();
            out.push(s.forward(&[9, 10], false).unwrap());
            out
        };
        let want = run(None);
        for gpu in common::devices() {
            let label = gpu.case(&format!("kv_shift vs CPU {arch}"));
            let got = run(Some(gpu.ctx.caps().index));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let e = nmse(g, w);
                assert!(e < 1e-3, "{label} step {i}: Vulkan vs CPU NMSE {e:.3e}");
            }
            gpu.assert_clean(&label);
        }
    }
}

#[test]
fn a_shift_the_cache_cannot_do_changes_nothing() {
    let m = tiny_model("llama", "q8_0");
    let mut s = session(&m, None);
    s.forward(&prompt(6), false).unwrap();
    let e = s.shift_seq(0, 4, 3).unwrap_err();
    assert!(matches!(e, vkgraph::Error::Usage(_)), "{e}");
    assert!(e.to_string().contains("needs at least 7"), "{e}");
    assert_eq!(s.n_past(), 6);
    assert!(s.shift_seq(1, 0, 1).is_err());
    // Dropping the newest tokens moves nothing and forgets them.
    s.shift_seq(0, 4, 2).unwrap();
    assert_eq!(s.n_past(), 4);
}
