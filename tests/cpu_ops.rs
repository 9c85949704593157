//! The CPU reference ops against independent, deliberately naive f64 formulations:
//! matmul over a fully dequantized matrix (with and without a split), rope as a
//! complex rotation, attention as explicit scores → masked softmax → weighted sum,
//! rms_norm and swiglu from their definitions.

use half::f16;
use vkgraph::backend::cpu::ops;
use vkgraph::graph::RopeMode;
use vkgraph::quant::{self, GgmlType};

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn max_rel(a: &[f32], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y).abs() / scale))
}

#[test]
fn mul_mat_matches_dequantized_triple_loop() {
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ] {
        let (k, m, n) = (256, 9, 3);
        let wf = data(k * m, 1);
        let w = quant::quantize(ty, &wf).unwrap();
        let mut wd = vec![0f32; k * m];
        quant::dequantize(ty, &w, &mut wd).unwrap();
        let x = data(k * n, 2);
        // split 4 + 5 rows
        let split = [4usize, 5];
        let rb = ty.row_bytes(k).unwrap();
        let segs = [&w[..4 * rb], &w[4 * rb..]];
        let mut got = vec![0f32; m * n];
        ops::mul_mat(ty, &segs, &split, k, &x, n, &mut got).unwrap();
        let mut want = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let acc: f64 = (0..k)
                    .map(|t| wd[i * k + t] as f64 * x[j * k + t] as f64)
                    .sum();
                let (start, rows) = if i < 4 { (0, 4) } else { (4, 5) };
                want[n * start + j * rows + (i - start)] = acc;
            }
        }
        assert!(max_rel(&got, &want) < 1e-6, "{ty}");
        let mut plain = vec![0f32; m * n];
        ops::mul_mat(ty, &[&w], &[m], k, &x, n, &mut plain).unwrap();
        for i in 0..m {
            for j in 0..n {
                let acc: f64 = (0..k)
                    .map(|t| wd[i * k + t] as f64 * x[j * k + t] as f64)
                    .sum();
                assert!(
                    (plain[j * m + i] as f64 - acc).abs() < 1e-5,
                    "{ty} unsplit ({i},{j})"
                );
            }
        }
    }
}

#[test]
fn rope_is_a_complex_rotation() {
    let (hd, nh) = (16, 2);
    let pos = [0, 5, 37];
    let x = data(hd * nh * pos.len(), 3);
    for (mode, n_dims) in [
        (RopeMode::Normal, 16),
        (RopeMode::Neox, 16),
        (RopeMode::Neox, 8),
    ] {
        let mut got = vec![0f32; x.len()];
        ops::rope(&x, hd, nh, &pos, mode, n_dims, 10000.0, 1.0, &mut got);
        for (t, &p) in pos.iter().enumerate() {
            for h in 0..nh {
                let b = (t * nh + h) * hd;
                for i in 0..n_dims / 2 {
                    let (a, c) = match mode {
                        RopeMode::Normal => (b + 2 * i, b + 2 * i + 1),
                        RopeMode::Neox => (b + i, b + i + n_dims / 2),
                    };
                    let theta = p as f64 / 10000f64.powf(2.0 * i as f64 / n_dims as f64);
                    // (x0 + i·x1)·e^{iθ}
                    let re = x[a] as f64 * theta.cos() - x[c] as f64 * theta.sin();
                    let im = x[a] as f64 * theta.sin() + x[c] as f64 * theta.cos();
                    assert!((got[a] as f64 - re).abs() < 1e-6 && (got[c] as f64 - im).abs() < 1e-6);
                }
                for d in n_dims..hd {
                    assert_eq!(got[b + d], x[b + d], "pass-through dims");
                }
            }
        }
    }
}

#[test]
fn attention_is_masked_softmax_of_scores() {
    let (d, nh, nkv, n_kv) = (8, 4, 2, 6);
    let pos = [3, 4, 5];
    let q = data(d * nh * pos.len(), 4);
    let k: Vec<f16> = data(d * nkv * n_kv, 5)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let v: Vec<f16> = data(d * nkv * n_kv, 6)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let scale = 0.35;
    let mut got = vec![0f32; q.len()];
    // Token 1 attends from cell 2 on (a sequence whose cells start there).
    let lo = [0i32, 2, 0];
    let span: Vec<i32> = lo.iter().zip(&pos).flat_map(|(&l, &p)| [l, p]).collect();
    ops::attention(&q, d, nh, &k, &v, nkv, n_kv, &span, scale, &mut got);
    let mut want = vec![0f64; q.len()];
    for (t, &p) in pos.iter().enumerate() {
        for h in 0..nh {
            let kh = h * nkv / nh;
            let scores: Vec<f64> = (0..n_kv)
                .map(|j| {
                    if j as i32 > p || (j as i32) < lo[t] {
                        f64::NEG_INFINITY
                    } else {
                        (0..d)
                            .map(|i| {
                                q[(t * nh + h) * d + i] as f64 * k[(j * nkv + kh) * d + i].to_f64()
                            })
                            .sum::<f64>()
                            * scale as f64
                    }
                })
                .collect();
            let z: f64 = scores.iter().map(|s| s.exp()).sum();
            for i in 0..d {
                want[(t * nh + h) * d + i] = (0..n_kv)
                    .map(|j| scores[j].exp() / z * v[(j * nkv + kh) * d + i].to_f64())
                    .sum();
            }
        }
    }
    assert!(max_rel(&got, &want) < 1e-6);
}

#[test]
fn rms_norm_and_swiglu_from_definitions() {
    let x = data(3 * 10, 7);
    let mut got = vec![0f32; 30];
    ops::rms_norm(&x, 10, 1e-6, &mut got);
    for r in 0..3 {
        let row = &x[r * 10..][..10];
        let rms = (row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 10.0 + 1e-6).sqrt();
        for i in 0..10 {
            assert!((got[r * 10 + i] as f64 - row[i] as f64 / rms).abs() < 1e-6);
        }
    }
    let g = data(17, 8);
    let u = data(17, 9);
    let mut out = vec![0f32; 17];
    ops::swiglu(&g, &u, &mut out);
    for i in 0..17 {
        let s = g[i] as f64 / (1.0 + (-g[i] as f64).exp());
        assert!((out[i] as f64 - s * u[i] as f64).abs() < 1e-6);
    }
}
