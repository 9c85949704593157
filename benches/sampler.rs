//! The host sampler's cost per token (issue 10: `run` with the default sampler vs greedy
//! `bench`): µs per `Sampler::sample` over a 151,936-entry vocabulary (qwen3's) with the
//! default chain (top-k 40, top-p 0.95, min-p 0.05, temperature 0.8), with a repetition
//! penalty, and greedy, beside one plain pass over the logits (the floor). Logits are
//! random, re-drawn per repetition so no branch learns them. `cargo bench --bench sampler`.
//! It measures; it asserts nothing about speed.

use std::time::Instant;

use vkgraph::sample::{argmax, Sampler, SamplerParams};

const VOCAB: usize = 151_936;
const REPS: usize = 200;

fn logits(seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..VOCAB)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Roughly a model's spread: most logits small, a few large.
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            8.0 * u * u * u - 2.0
        })
        .collect()
}

fn time(name: &str, sets: &[Vec<f32>], mut f: impl FnMut(&[f32]) -> u32) {
    let mut sink = 0u64;
    let t = Instant::now();
    for l in sets {
        sink = sink.wrapping_add(u64::from(f(l)));
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / sets.len() as f64;
    println!("| {name} | {us:.1} | (checksum {sink}) |");
}

fn main() {
    let sets: Vec<Vec<f32>> = (0..REPS as u64).map(logits).collect();
    let history: Vec<u32> = (0..64).map(|i| i * 977 % VOCAB as u32).collect();
    println!("| sampler over {VOCAB} logits | µs per token | |\n| --- | ---: | --- |");
    time("one pass (sum, the floor)", &sets, |l| {
        l.iter().sum::<f32>() as u32
    });
    time("greedy (argmax)", &sets, argmax);
    let mut s = Sampler::new(SamplerParams::default());
    time("default chain", &sets, |l| s.sample(l, &history));
    let mut s = Sampler::new(SamplerParams {
        repeat_penalty: 1.1,
        ..Default::default()
    });
    time("default chain + repeat penalty 1.1", &sets, |l| {
        s.sample(l, &history)
    });
}
