//! Samplers: greedy is argmax, top-k 1 is greedy at any temperature, a seed makes runs
//! repeatable, draws follow the distribution, penalties and cut-offs do what they say,
//! and `top_k_logprobs` is a sorted, normalized top-k.

use vkgraph::sample::{argmax, log_softmax, top_k_logprobs, Sampler, SamplerParams};

fn logits() -> Vec<f32> {
    vec![0.5, 2.0, -1.0, 1.9, 0.0, 3.0, -2.0, 1.0]
}

#[test]
fn greedy_and_top_k_one_pick_the_argmax() {
    let l = logits();
    assert_eq!(argmax(&l), 5);
    let mut s = Sampler::new(SamplerParams {
        temp: 0.0,
        ..Default::default()
    });
    assert_eq!(s.sample(&l, &[]), 5);
    let mut s = Sampler::new(SamplerParams {
        temp: 5.0,
        top_k: 1,
        ..Default::default()
    });
    for _ in 0..20 {
        assert_eq!(s.sample(&l, &[]), 5);
    }
}

#[test]
fn seeded_runs_repeat_and_follow_the_distribution() {
    let l = logits();
    let p = SamplerParams {
        temp: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 7,
        ..Default::default()
    };
    let draw = |p: &SamplerParams| {
        let mut s = Sampler::new(p.clone());
        (0..4000).map(|_| s.sample(&l, &[])).collect::<Vec<u32>>()
    };
    let a = draw(&p);
    assert_eq!(a, draw(&p), "same seed, same tokens");
    assert_ne!(
        a,
        draw(&SamplerParams {
            seed: 8,
            ..p.clone()
        }),
        "other seed, other tokens"
    );
    // Empirical frequencies match softmax within sampling noise.
    let lp = log_softmax(&l);
    for (i, &want) in lp.iter().enumerate() {
        let got = a.iter().filter(|&&t| t as usize == i).count() as f64 / a.len() as f64;
        assert!(
            (got - want.exp()).abs() < 0.03,
            "token {i}: {got} vs {}",
            want.exp()
        );
    }
}

#[test]
fn cut_offs_and_penalty() {
    let l = logits();
    // top-k 2 keeps tokens 5 and 1 only.
    let mut s = Sampler::new(SamplerParams {
        temp: 1.0,
        top_k: 2,
        top_p: 1.0,
        min_p: 0.0,
        ..Default::default()
    });
    for _ in 0..200 {
        assert!([5, 1].contains(&s.sample(&l, &[])));
    }
    // min-p 0.5 keeps tokens within half the top probability: 5 only (e^-1 < 0.5).
    let mut s = Sampler::new(SamplerParams {
        temp: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.5,
        ..Default::default()
    });
    for _ in 0..200 {
        assert_eq!(s.sample(&l, &[]), 5);
    }
    // top-p 0.5: token 5 alone has p ≈ 0.51.
    let mut s = Sampler::new(SamplerParams {
        temp: 1.0,
        top_k: 0,
        top_p: 0.5,
        min_p: 0.0,
        ..Default::default()
    });
    for _ in 0..200 {
        assert_eq!(s.sample(&l, &[]), 5);
    }
    // A strong repetition penalty on token 5 makes greedy pick the runner-up.
    let mut s = Sampler::new(SamplerParams {
        temp: 0.0,
        repeat_penalty: 2.0,
        ..Default::default()
    });
    assert_eq!(s.sample(&l, &[5]), 1);
}

#[test]
fn top_k_logprobs_sorted_and_normalized() {
    let l = logits();
    let top = top_k_logprobs(&l, 3);
    assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![5, 1, 3]);
    let all = top_k_logprobs(&l, l.len());
    let total: f64 = all.iter().map(|t| t.1.exp()).sum();
    assert!((total - 1.0).abs() < 1e-12);
    assert!(all.windows(2).all(|w| w[0].1 >= w[1].1));
}
