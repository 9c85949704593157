//! `--fit` (`sched::fit`): how many layers fit a device budget — everything when it
//! fits, none when only the margin does, the last layers first in between, never more for a
//! smaller budget, and LoRA adapters and the context's KV cache counted.

mod models;

use vkgraph::model::Model;
use vkgraph::sched::fit::{fit, margin};

#[test]
fn layers_that_fit_grow_with_the_budget_from_none_to_all() {
    let m = Model::open(models::tiny("llama", "q8_0")).unwrap();
    let n = m.hp.n_layer;
    let n_ctx = 256;
    let all = fit(&m, n_ctx, u64::MAX / 4);
    assert_eq!(all.gpu_layers, n + 1, "a huge budget takes everything");
    let base = margin(1 << 20); // the floor (64 MiB) below 1.28 GiB
    assert_eq!(
        fit(&m, n_ctx, base).gpu_layers,
        0,
        "only the margin: nothing"
    );
    assert_eq!(
        fit(&m, n_ctx, base + all.bytes).gpu_layers,
        n + 1,
        "exactly enough"
    );
    let one_short = fit(&m, n_ctx, base + all.bytes - 1);
    assert!(one_short.gpu_layers <= n, "{one_short:?}");
    // Monotonic in the budget, and the bytes stay within it.
    let mut last = 0;
    for step in 0..=40u64 {
        let b = base + all.bytes * step / 40;
        let f = fit(&m, n_ctx, b);
        assert!(f.gpu_layers >= last, "budget {b}: {f:?} after {last}");
        assert!(f.bytes <= b - base, "budget {b}: {f:?}");
        last = f.gpu_layers;
    }
    // Some budget takes some but not all layers.
    assert!(
        (0..=40u64).any(|s| {
            let l = fit(&m, n_ctx, base + all.bytes * s / 40).gpu_layers;
            l > 0 && l <= n
        }),
        "no partial fit between none and all"
    );
    // A longer context needs more bytes for the same model.
    assert!(fit(&m, 4 * n_ctx, u64::MAX / 4).bytes > all.bytes);
}

#[test]
fn adapters_count_toward_the_fit() {
    let base = models::tiny("qwen3", "q4_0");
    let ad = std::env::temp_dir().join(format!("vkgraph-fit-lora-{}.gguf", std::process::id()));
    let plain = Model::open(&base).unwrap();
    vkgraph::model::gen::generate_lora(&plain, &["attn_q", "ffn_up"], 16, 16.0, 3, &ad).unwrap();
    let with = Model::open_with_lora(&base, &[(ad.clone(), 1.0)]).unwrap();
    let (a, b) = (fit(&plain, 64, u64::MAX / 4), fit(&with, 64, u64::MAX / 4));
    let adapter_bytes: u64 = with.adapters[0].file.tensors.iter().map(|t| t.nbytes).sum();
    assert_eq!(b.bytes, a.bytes + adapter_bytes);
    let _ = std::fs::remove_file(&ad);
}
