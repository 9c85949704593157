//! `-ngl N` layer placement (sched::Placement): a 2-layer tiny model with its last layer on
//! Vulkan and the first on the CPU gives the CPU reference's greedy tokens and logits, each
//! backend holding only its own layers' weights and KV cache; `-ngl` above the layer count
//! puts everything on Vulkan. The dump's BACKENDS section says who holds what.

mod common;
mod models;

use std::sync::Arc;

use models::{argmax, nmse, prompt, tiny_model};
use vkgraph::backend::cpu::CpuBackend;
use vkgraph::backend::vulkan::VulkanBackend;
use vkgraph::backend::Backend;
use vkgraph::model::Model;
use vkgraph::passes::QkvMode;
use vkgraph::sched::session::{Session, SessionOptions};
use vkgraph::sched::{dump, Placement};

const N_CTX: usize = 32;

/// Prompt then 6 greedy steps; the logits of every step and the tokens chosen.
fn greedy(s: &mut Session) -> (Vec<Vec<f32>>, Vec<u32>) {
    let mut logits = vec![s.forward(&prompt(5), false).unwrap()];
    let mut toks = Vec::new();
    for _ in 0..6 {
        let t = argmax(logits.last().unwrap());
        toks.push(t);
        logits.push(s.forward(&[t], false).unwrap());
    }
    (logits, toks)
}

fn session(m: &Arc<Model>, backends: Vec<Box<dyn Backend>>, ngl: Option<usize>) -> Session {
    Session::new(
        m.clone(),
        backends,
        SessionOptions {
            qkv: QkvMode::Auto,
            n_ctx: N_CTX,
            placement: Placement { gpu_layers: ngl },
            ..Default::default()
        },
    )
}

#[test]
fn layers_split_between_vulkan_and_cpu_match_the_cpu() {
    for gpu in common::devices() {
        for (arch, quant) in [("llama", "q4_0"), ("qwen2", "q4_k_m"), ("qwen3", "q2_k")] {
            let m = tiny_model(arch, quant);
            let cpu: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new(m.clone()))];
            let (want, want_toks) = greedy(&mut session(&m, cpu, None));
            for ngl in [1usize, 2, 3] {
                let case = gpu.case(&format!("{arch} {quant} -ngl {ngl}"));
                let opts = common::options(gpu.ctx.caps().index);
                let vk = VulkanBackend::new(m.clone(), &opts).unwrap();
                let bound = if vk.int8_mat_vec() { 1e-3 } else { 1e-4 };
                let backends: Vec<Box<dyn Backend>> =
                    vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))];
                let mut s = session(&m, backends, Some(ngl));
                let (got, toks) = greedy(&mut s);
                assert_eq!(toks, want_toks, "{case}: greedy tokens");
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let e = nmse(g, w);
                    assert!(e <= bound, "{case} step {i}: NMSE vs CPU {e:e}");
                }
                // Who holds what: the plan's weight bytes per backend, and Vulkan's buffers.
                let (g, a) = s.plan(1, false).unwrap();
                let planned = a.weight_bytes(&g);
                let held = s.weight_bytes();
                assert_eq!(
                    held[0].1, planned[0],
                    "{case}: Vulkan holds its nodes' weights"
                );
                let text = dump::dump(&g, &a);
                let line = |name: &str| {
                    text.lines()
                        .find(|l| l.starts_with(&format!("{name}: ")))
                        .unwrap_or("")
                        .to_string()
                };
                match ngl {
                    1 => {
                        assert!(line("Vulkan0").contains("layer 1,"), "{case}:\n{text}");
                        assert!(line("CPU").contains("layer 0,"), "{case}:\n{text}");
                        assert!(planned[1] > 0 && planned[0] > 0, "{case}: {planned:?}");
                    }
                    2 => {
                        assert!(line("Vulkan0").contains("layers 0-1"), "{case}:\n{text}");
                        assert!(line("CPU").contains("no layers"), "{case}:\n{text}");
                    }
                    _ => {
                        assert!(line("CPU").is_empty(), "{case}: all on Vulkan:\n{text}");
                        assert_eq!(planned[1], 0, "{case}");
                    }
                }
                drop(s);
                gpu.assert_clean(&case);
            }
        }
    }
}
