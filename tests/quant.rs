//! CPU reference quantization vs ggml itself.
//!
//! The fixtures in `tests/fixtures/quant/` were produced by `scripts/gen_quant_fixtures.py`
//! from ggml's own shared library (PyPI `libggml-python`): a deterministic 8×512 f32 input
//! (`input.f32`: mixed block scales, tiny values with subnormals, outliers, constant blocks,
//! then 4 plain N(0,1) rows), ggml's quantized bytes per type (`<type>.q`, from
//! `ggml_quantize_chunk` without importance matrix) and ggml's dequantization of those bytes
//! (`<type>.deq`). All 13 weight types are bit-exact in both directions; no type needed the
//! weaker "error no larger than ggml's" fallback.

use std::path::PathBuf;

use vkgraph::quant::{check_row, dequantize, dot_row, quantize, GgmlType};
use vkgraph::Error;

const ROWS: usize = 8;
const COLS: usize = 512;
/// Rows 4..8 of the fixture input are plain N(0, 1).
const GAUSS_ROWS: std::ops::Range<usize> = 4..8;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/quant")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn input() -> Vec<f32> {
    let x = f32s(&fixture("input.f32"));
    assert_eq!(x.len(), ROWS * COLS);
    x
}

fn rel_rmse(x: &[f32], y: &[f32]) -> f64 {
    let (mut e, mut s) = (0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(y) {
        e += (a as f64 - b as f64).powi(2);
        s += (a as f64).powi(2);
    }
    (e / s).sqrt()
}

fn dequant_all(ty: GgmlType, q: &[u8]) -> Vec<f32> {
    let mut out = vec![f32::NAN; ROWS * COLS];
    let rb = ty.row_bytes(COLS).unwrap();
    for (qr, yr) in q.chunks(rb).zip(out.chunks_mut(COLS)) {
        dequantize(ty, qr, yr).unwrap();
    }
    out
}

#[test]
fn dequantize_matches_ggml_bit_for_bit() {
    for ty in GgmlType::WEIGHT_TYPES {
        let q = fixture(&format!("{}.q", ty.name()));
        let want = f32s(&fixture(&format!("{}.deq", ty.name())));
        assert_eq!(
            q.len(),
            ROWS * ty.row_bytes(COLS).unwrap(),
            "{ty} fixture size"
        );
        let got = dequant_all(ty, &q);
        let bad: Vec<usize> = (0..want.len())
            .filter(|&i| got[i].to_bits() != want[i].to_bits())
            .collect();
        assert!(
            bad.is_empty(),
            "{ty}: {} of {} values differ from ggml; first at {}: ours {:e} ggml {:e}",
            bad.len(),
            want.len(),
            bad[0],
            got[bad[0]],
            want[bad[0]]
        );
    }
}

#[test]
fn quantize_matches_ggml_bytes() {
    let x = input();
    for ty in GgmlType::WEIGHT_TYPES {
        let want = fixture(&format!("{}.q", ty.name()));
        // Row by row (what the model writer does) and all at once must agree.
        let rb = ty.row_bytes(COLS).unwrap();
        let mut got = Vec::new();
        for r in x.chunks(COLS) {
            let q = quantize(ty, r).unwrap();
            assert_eq!(q.len(), rb);
            got.extend(q);
        }
        assert_eq!(quantize(ty, &x).unwrap(), got, "{ty}: whole vs per-row");
        let ts = ty.type_size();
        let bad: Vec<usize> = (0..want.len() / ts)
            .filter(|&b| got[b * ts..(b + 1) * ts] != want[b * ts..(b + 1) * ts])
            .collect();
        assert!(
            bad.is_empty(),
            "{ty}: {} of {} blocks differ from ggml; first block {}:\n ours {:?}\n ggml {:?}",
            bad.len(),
            want.len() / ts,
            bad[0],
            &got[bad[0] * ts..(bad[0] + 1) * ts],
            &want[bad[0] * ts..(bad[0] + 1) * ts]
        );
    }
}

/// SplitMix64, as in scripts/gen_quant_fixtures.py.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 bits (exact in f64).
    fn unit(&mut self) -> f64 {
        (self.next() >> 40) as f64 / 16_777_216.0
    }
}

const STRESS_ROWS: usize = 16;
const STRESS_COLS: usize = 1024;

/// The stress input of the fixture script, regenerated bit-for-bit (same integer generator,
/// same f64 operations in the same order, one rounding to f32 at the end).
fn stress_input() -> Vec<f32> {
    let mut r = SplitMix64(0x5eed_f00d);
    let mut out = Vec::with_capacity(STRESS_ROWS * STRESS_COLS);
    for _ in 0..STRESS_ROWS * STRESS_COLS / 32 {
        let sel = r.next();
        let scale = 2f64.powi((sel % 13) as i32 - 8);
        let offset = if (sel >> 8) % 3 == 0 {
            0.0
        } else {
            (r.unit() - 0.5) * 4.0 * scale
        };
        for _ in 0..32 {
            let g = (r.unit() + r.unit() + r.unit() + r.unit() - 2.0) * 1.732_050_807_568_877_2;
            let mut v = g * scale + offset;
            if r.next() % 61 == 0 {
                v *= 16.0;
            }
            out.push(v as f32);
        }
    }
    out
}

#[test]
fn quantize_matches_ggml_bytes_on_stress_input() {
    let x = stress_input();
    let meta: serde_json::Value = serde_json::from_slice(&fixture("meta.json")).unwrap();
    let first: Vec<f64> = meta["stress"]["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let sum: f64 = x.iter().map(|&v| v as f64).sum();
    assert_eq!(
        first,
        x[..4].iter().map(|&v| v as f64).collect::<Vec<_>>(),
        "stress generator drifted"
    );
    let want_sum = meta["stress"]["sum_f64"].as_f64().unwrap();
    assert!(
        (sum - want_sum).abs() <= 1e-9 * want_sum.abs(),
        "stress generator drifted: {sum} vs {want_sum}"
    );

    for ty in GgmlType::WEIGHT_TYPES
        .into_iter()
        .filter(|t| t.is_quantized())
    {
        let want = fixture(&format!("stress_{}.q", ty.name()));
        let got = quantize(ty, &x).unwrap();
        assert_eq!(got.len(), want.len(), "{ty}");
        let ts = ty.type_size();
        let bad: Vec<usize> = (0..want.len() / ts)
            .filter(|&b| got[b * ts..(b + 1) * ts] != want[b * ts..(b + 1) * ts])
            .collect();
        assert!(
            bad.is_empty(),
            "{ty}: {} of {} stress blocks differ from ggml (first: {})",
            bad.len(),
            want.len() / ts,
            bad[0]
        );
    }
}

/// Upper bounds on relative RMSE of a round trip on N(0,1) data, per type: about 1.2× what
/// ggml achieves on the fixture's gaussian rows (see docs/quant.md).
fn error_bound(ty: GgmlType) -> f64 {
    use GgmlType as T;
    match ty {
        T::F32 => 0.0,
        T::F16 => 3e-4,
        T::BF16 => 2.5e-3,
        T::Q4_0 => 0.105,
        T::Q4_1 => 0.095,
        T::Q5_0 => 0.052,
        T::Q5_1 => 0.046,
        T::Q8_0 => 0.0065,
        T::Q2K => 0.36,
        T::Q3K => 0.185,
        T::Q4K => 0.087,
        T::Q5K => 0.044,
        T::Q6K => 0.022,
        T::I32 => unreachable!(),
    }
}

#[test]
fn round_trip_error_within_bounds_and_not_worse_than_ggml() {
    let x = input();
    let g = &x[GAUSS_ROWS.start * COLS..GAUSS_ROWS.end * COLS];
    println!("| type | bits/weight | ours rel. RMSE | ggml rel. RMSE |");
    println!("|------|------------:|---------------:|---------------:|");
    for ty in GgmlType::WEIGHT_TYPES {
        let ggml_deq = f32s(&fixture(&format!("{}.deq", ty.name())));
        let ggml_err = rel_rmse(g, &ggml_deq[GAUSS_ROWS.start * COLS..GAUSS_ROWS.end * COLS]);
        let q = quantize(ty, g).unwrap();
        let mut y = vec![0.0; g.len()];
        dequantize(ty, &q, &mut y).unwrap();
        let ours = rel_rmse(g, &y);
        let bpw = ty.type_size() as f64 * 8.0 / ty.block_size() as f64;
        println!("| {ty} | {bpw:.4} | {ours:.6} | {ggml_err:.6} |");
        assert!(
            ours <= ggml_err * (1.0 + 1e-6),
            "{ty}: ours {ours} worse than ggml {ggml_err}"
        );
        assert!(
            ours <= error_bound(ty),
            "{ty}: rel RMSE {ours} above bound {}",
            error_bound(ty)
        );
        // A quantizer that returns zeros would have rel RMSE 1; make sure the bound means something.
        assert!(error_bound(ty) < 0.5);
    }
}

/// A small deterministic generator (SplitMix64 + Box-Muller) for data beyond the fixtures.
fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (next().max(1e-300), next());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

#[test]
fn round_trip_error_on_larger_random_data() {
    let x = gaussian(64 * 1024, 7);
    for ty in GgmlType::WEIGHT_TYPES {
        let q = quantize(ty, &x).unwrap();
        let mut y = vec![0.0; x.len()];
        dequantize(ty, &q, &mut y).unwrap();
        let e = rel_rmse(&x, &y);
        println!("{ty}: rel RMSE on 64K N(0,1) values {e:.6}");
        assert!(
            e <= error_bound(ty),
            "{ty}: rel RMSE {e} above bound {}",
            error_bound(ty)
        );
    }
}

#[test]
fn dot_row_equals_dequantize_then_dot() {
    let w = input();
    let x = gaussian(COLS, 11);
    for ty in GgmlType::WEIGHT_TYPES {
        let q = quantize(ty, &w).unwrap();
        let rb = ty.row_bytes(COLS).unwrap();
        for (r, row) in q.chunks(rb).enumerate() {
            let mut y = vec![0.0; COLS];
            dequantize(ty, row, &mut y).unwrap();
            let want: f64 = y.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
            let got = dot_row(ty, row, &x);
            let tol = 1e-6
                * y.iter()
                    .zip(&x)
                    .map(|(&a, &b)| (a as f64 * b as f64).abs())
                    .sum::<f64>();
            assert!(
                (got as f64 - want).abs() <= tol.max(f64::MIN_POSITIVE),
                "{ty} row {r}: dot_row {got} vs {want}"
            );
        }
    }
    // Float rows whose length is not a multiple of dot_row's internal chunk.
    let x = gaussian(300, 3);
    let w = gaussian(300, 4);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
        let q = quantize(ty, &w).unwrap();
        let mut y = vec![0.0; 300];
        dequantize(ty, &q, &mut y).unwrap();
        let want: f64 = y.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!((dot_row(ty, &q, &x) as f64 - want).abs() < 1e-4, "{ty}");
    }
}

#[test]
fn special_blocks() {
    // All-zero input quantizes to blocks that dequantize to exact zeros for every type.
    for ty in GgmlType::WEIGHT_TYPES {
        let q = quantize(ty, &[0.0; 512]).unwrap();
        let mut y = vec![1.0; 512];
        dequantize(ty, &q, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == 0.0), "{ty}: zeros do not round-trip");
    }
    // A constant block round-trips closely.
    for ty in GgmlType::WEIGHT_TYPES {
        let q = quantize(ty, &[0.375; 256]).unwrap();
        let mut y = vec![0.0; 256];
        dequantize(ty, &q, &mut y).unwrap();
        let e = y.iter().map(|&v| (v - 0.375).abs()).fold(0.0, f32::max);
        assert!(e < 0.375 * 0.1, "{ty}: constant block max error {e}");
    }
}

#[test]
fn errors_are_typed_not_panics() {
    for ty in GgmlType::WEIGHT_TYPES {
        let bs = ty.block_size();
        let rb = ty.row_bytes(bs * 2).unwrap();
        // Wrong byte count for the value count.
        let mut y = vec![0.0; bs * 2];
        assert!(
            matches!(
                dequantize(ty, &vec![0; rb - 1], &mut y),
                Err(Error::Usage(_))
            ),
            "{ty}"
        );
        assert!(
            matches!(
                dequantize(ty, &vec![0; rb + 1], &mut y),
                Err(Error::Usage(_))
            ),
            "{ty}"
        );
        assert!(check_row(ty, bs * 2, rb).is_ok());
        assert!(check_row(ty, bs * 2, rb + 1).is_err());
        if bs > 1 {
            // Value count not a multiple of the block size.
            let mut y = vec![0.0; bs + 1];
            let e = dequantize(ty, &vec![0; rb], &mut y).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{ty}");
            assert!(
                e.to_string().contains(ty.name()),
                "message names the type: {e}"
            );
            assert!(
                matches!(quantize(ty, &vec![0.0; bs + 1]), Err(Error::Usage(_))),
                "{ty}"
            );
            assert!(
                matches!(quantize(ty, &vec![0.0; bs - 1]), Err(Error::Usage(_))),
                "{ty}"
            );
        }
        // Empty input is fine.
        assert_eq!(quantize(ty, &[]).unwrap(), Vec::<u8>::new());
        assert!(dequantize(ty, &[], &mut []).is_ok());
    }
    let e = quantize(GgmlType::I32, &[1.0; 4]).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)));
    assert!(e.to_string().contains("i32"), "{e}");
    let mut y = [0.0; 4];
    assert!(matches!(
        dequantize(GgmlType::I32, &[0; 16], &mut y),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn dot_row_rejects_a_wrong_row_length() {
    let r = std::panic::catch_unwind(|| dot_row(GgmlType::Q4K, &[0; 143], &[0.0; 256]));
    assert!(r.is_err());
}
