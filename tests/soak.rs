//! A 10,000-token generation on Vulkan (then the CPU for what it cannot run) with flat host
//! and device memory: after a warm-up, generating 9,000 more tokens one at a time grows the
//! process's resident memory by less than 8 MiB and the backend's device memory not at all
//! (everything per token is planned once and replayed). The tiny model keeps it about a
//! minute on lavapipe.

mod common;
mod models;

use vkgraph::backend::cpu::CpuBackend;
use vkgraph::backend::vulkan::VulkanBackend;
use vkgraph::backend::Backend;
use vkgraph::sched::session::{Session, SessionOptions};

const TOKENS: usize = 10_000;

/// Resident set size of this process, bytes (Linux /proc).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn ten_thousand_tokens_with_flat_memory() {
    let m = models::tiny_model("llama", "q4_0");
    for gpu in common::devices() {
        let vk = VulkanBackend::new(m.clone(), &common::options(gpu.ctx.caps().index)).unwrap();
        let backends: Vec<Box<dyn Backend>> =
            vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))];
        let mut s = Session::new(
            m.clone(),
            backends,
            SessionOptions {
                n_ctx: TOKENS + 16,
                ..Default::default()
            },
        );
        let mut logits = s.forward(&models::prompt(4), false).unwrap();
        let mut marks = Vec::new();
        for i in 0..TOKENS - 4 {
            let t = models::argmax(&logits);
            logits = s.forward(&[t], false).unwrap();
            assert!(
                logits.iter().all(|v| v.is_finite()),
                "token {i}: non-finite logits"
            );
            if i == 1000 || i == TOKENS - 5 {
                marks.push((rss(), s.device_bytes()[0].1));
            }
        }
        let (host0, dev0) = marks[0];
        let (host1, dev1) = marks[1];
        let grew = host1.saturating_sub(host0);
        eprintln!(
            "{}: rss {} -> {} MiB, device {} -> {} MiB",
            gpu.case("soak"),
            host0 >> 20,
            host1 >> 20,
            dev0 >> 20,
            dev1 >> 20
        );
        assert!(
            grew < 8 << 20,
            "{}: host memory grew {grew} bytes over 9,000 tokens",
            gpu.case("soak")
        );
        assert_eq!(dev0, dev1, "{}: device memory changed", gpu.case("soak"));
        assert!(dev0 > 0, "device memory not reported");
        assert_eq!(s.n_past(), TOKENS);
        drop(s);
        gpu.assert_clean("soak");
    }
}
