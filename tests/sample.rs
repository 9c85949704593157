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

/// The device path (a TOP_K row: max, log-sum-exp, the k largest as (id, logit)) gives the
/// very tokens the full-logits path gives, draw after draw, for the default chain, other
/// temperatures / cut-offs and greedy, on logits with many ties; and `candidates_needed`
/// refuses chains that read the whole vocabulary (a repetition penalty, no top-k).
#[test]
fn top_k_rows_sample_the_same_tokens_as_full_logits() {
    use vkgraph::backend::cpu::ops::top_k;
    let mut state = 99u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let chains = [
        SamplerParams::default(),
        SamplerParams {
            temp: 1.5,
            top_k: 64,
            top_p: 0.8,
            min_p: 0.0,
            seed: 3,
            ..Default::default()
        },
        SamplerParams {
            temp: 0.0,
            ..Default::default()
        },
        SamplerParams {
            temp: 0.3,
            top_k: 5,
            top_p: 1.0,
            min_p: 0.2,
            seed: 11,
            ..Default::default()
        },
    ];
    for p in chains {
        let mut full = Sampler::new(p.clone());
        let mut dev = Sampler::new(p.clone());
        let k = dev.candidates_needed(64).expect("top-k chain");
        for step in 0..300 {
            let v = 500 + (step * 37) % 3000;
            // A spread of logits, a third of the steps with heavy ties.
            let l: Vec<f32> = (0..v)
                .map(|_| {
                    let x = (next() % 4000) as f32 / 400.0 - 5.0;
                    if step % 3 == 0 {
                        x.round()
                    } else {
                        x
                    }
                })
                .collect();
            let mut row = vec![0f32; 2 + 2 * k];
            top_k(&l, v, k, &mut row);
            assert_eq!(
                full.sample(&l, &[]),
                dev.sample_top(&row),
                "{p:?} step {step}"
            );
        }
    }
    let penalized = Sampler::new(SamplerParams {
        repeat_penalty: 1.1,
        ..Default::default()
    });
    assert_eq!(penalized.candidates_needed(64), None);
    let no_top_k = Sampler::new(SamplerParams {
        top_k: 0,
        ..Default::default()
    });
    assert_eq!(no_top_k.candidates_needed(64), None);
}
