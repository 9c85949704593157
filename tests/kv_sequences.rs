//! The KV cache with sequences (`kv::KvCache`, `Session::forward_batch`): two sequences
//! decoded in one batch — their prompts interleaved token by token, then one token of
//! each per step — give the logits and greedy tokens each gives alone, on the CPU and on
//! every Vulkan device (validated); a copied sequence continues like its source; a
//! truncated one recomputes what it forgot.

mod common;
mod models;

use std::sync::Arc;

use models::{argmax, nmse, tiny_model};
use vkgraph::model::Model;

const STEPS: usize = 4;

use common::session;

/// Logits after the prompt and after each greedy step, one sequence alone.
fn alone(m: &Arc<Model>, dev: Option<usize>, prompt: &[u32]) -> Vec<Vec<f32>> {
    let mut s = session(m, dev, 16, 1);
    let mut out = vec![s.forward(prompt, false).unwrap()];
    for _ in 0..STEPS {
        let t = argmax(out.last().unwrap());
        out.push(s.forward(&[t], false).unwrap());
    }
    out
}

#[allow(clippy::needless_range_loop)] // steps index both sides
fn check_pair(m: &Arc<Model>, dev: Option<usize>, label: &str, bound: f64) {
    let n_vocab = m.hp.n_vocab;
    let p0: Vec<u32> = vec![11, 48, 85, 122, 159];
    let p1: Vec<u32> = vec![200, 7, 93, 31];
    let want = [alone(m, dev, &p0), alone(m, dev, &p1)];
    // Both prompts in one batch, interleaved; logits of every token.
    let mut s = session(m, dev, 32, 2);
    let (mut seqs, mut toks) = (Vec::new(), Vec::new());
    for i in 0..p0.len().max(p1.len()) {
        for (q, p) in [(0usize, &p0), (1, &p1)] {
            if let Some(&t) = p.get(i) {
                seqs.push(q);
                toks.push(t);
            }
        }
    }
    let all = s.forward_batch(&seqs, &toks, true).unwrap();
    let last = |q: usize| seqs.iter().rposition(|&x| x == q).unwrap();
    let mut cur: Vec<Vec<f32>> = (0..2)
        .map(|q| all[last(q) * n_vocab..][..n_vocab].to_vec())
        .collect();
    for step in 0..=STEPS {
        for q in 0..2 {
            let e = nmse(&cur[q], &want[q][step]);
            assert!(
                e <= bound,
                "{label}: seq {q} step {step}: NMSE vs alone {e:e}"
            );
            assert_eq!(
                argmax(&cur[q]),
                argmax(&want[q][step]),
                "{label}: seq {q} step {step}"
            );
        }
        if step == STEPS {
            break;
        }
        // One token of each sequence in one batch (sequence 1 first: order is free).
        let next = [argmax(&cur[0]), argmax(&cur[1])];
        let out = s.forward_batch(&[1, 0], &[next[1], next[0]], true).unwrap();
        cur = vec![out[n_vocab..].to_vec(), out[..n_vocab].to_vec()];
    }
    assert_eq!(s.kv().len(0), p0.len() + STEPS);
    assert_eq!(s.kv().len(1), p1.len() + STEPS);

    // Copy: sequence 1 becomes sequence 0; the same next token gives the same logits.
    s.copy_seq(0, 1).unwrap();
    let t = argmax(&cur[0]);
    let out = s.forward_batch(&[0, 1], &[t, t], true).unwrap();
    let e = nmse(&out[n_vocab..], &out[..n_vocab]);
    assert!(e <= 1e-10, "{label}: copied sequence differs: NMSE {e:e}");
    // Truncate: forget all but the prompt's first 3 tokens and feed the rest again.
    s.truncate_seq(0, 3).unwrap();
    let again = s.forward_batch(&[0, 0], &p0[3..], false).unwrap();
    let e = nmse(&again, &want[0][0]);
    assert!(e <= bound, "{label}: after truncate: NMSE {e:e}");
}

#[test]
fn two_sequences_in_one_batch_match_each_alone() {
    for (arch, quant) in [("llama", "q4_0"), ("qwen3", "q4_k_m")] {
        let m = tiny_model(arch, quant);
        check_pair(&m, None, &format!("[CPU] {arch} {quant}"), 1e-10);
        for gpu in common::devices() {
            let dev = gpu.ctx.caps().index;
            // Batches of different sizes take different kernels (mat-vec vs tiled).
            let label = gpu.case(&format!("{arch} {quant}"));
            check_pair(&m, Some(dev), &label, 1e-4);
            gpu.assert_clean(&label);
        }
    }
}
