//! Operand helpers of the op tests (vk_ops, vk_attention): f32/f16/i32 inputs at non-zero
//! element offsets of larger buffers, outputs between guard values, one-shot recording,
//! and the NaN/NMSE check against the CPU reference.

use half::f16;
use vkgraph::backend::vulkan::{Buffer, BufferRange, Recorder};

use super::Gpu;

/// Tolerance for exact (non-quantized) ops, as docs/testing.md and DESIGN.md state.
pub const NMSE_EXACT: f64 = 1e-6;
/// Guard pattern around outputs: a signalling-NaN bit pattern no kernel computes.
pub const GUARD: u32 = 0x7fa5_5a5a;
/// Guard elements before and after each output.
pub const GUARD_N: usize = 19;

/// Normalized mean squared error `Σ(a−b)² / Σb²`.
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (g as f64 - w as f64).powi(2);
        den += (w as f64).powi(2);
    }
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

/// An f32 input at element offset `pre` of a larger buffer.
pub struct Input {
    pub buf: Buffer,
    pub pre: usize,
    pub len: usize,
}

impl Input {
    pub fn f32(gpu: &Gpu, name: &str, data: &[f32], pre: usize) -> Input {
        Self::bytes(gpu, name, bytemuck::cast_slice(data), 4, pre)
    }

    pub fn i32(gpu: &Gpu, name: &str, data: &[i32], pre: usize) -> Input {
        Self::bytes(gpu, name, bytemuck::cast_slice(data), 4, pre)
    }

    pub fn f16(gpu: &Gpu, name: &str, data: &[f16], pre: usize) -> Input {
        let bytes: Vec<u8> = data.iter().flat_map(|h| h.to_le_bytes()).collect();
        Self::bytes(gpu, name, &bytes, 2, pre)
    }

    /// `pre` elements of `elem` bytes of filler, the data, then 64 bytes of filler.
    pub fn bytes(gpu: &Gpu, name: &str, data: &[u8], elem: usize, pre: usize) -> Input {
        let mut all = vec![0xEEu8; pre * elem];
        all.extend_from_slice(data);
        all.extend_from_slice(&[0xEE; 64]);
        Input {
            buf: gpu.buffer_from(name, &all),
            pre,
            len: data.len() / elem,
        }
    }

    /// Reads an f16 input back (kernels that write into an input table).
    pub fn read_f16(&self, gpu: &Gpu) -> Vec<f16> {
        let bytes_total = self.pre * 2 + self.len * 2 + 64;
        let all = gpu.read_f32(&self.buf, 0, bytes_total / 4);
        let bytes: &[u8] = bytemuck::cast_slice(&all);
        bytes[self.pre * 2..][..self.len * 2]
            .chunks(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    pub fn range(&self, elem: u64) -> BufferRange<'_> {
        self.buf
            .range(self.pre as u64 * elem, self.len as u64 * elem)
    }
}

/// An f32 output of `len` elements between two runs of [`GUARD`] values.
pub struct Output {
    pub buf: Buffer,
    pub len: usize,
}

impl Output {
    pub fn new(gpu: &Gpu, name: &str, len: usize) -> Output {
        let fill = vec![f32::from_bits(GUARD); len + 2 * GUARD_N];
        Output {
            buf: gpu.buffer_from(name, bytemuck::cast_slice(&fill)),
            len,
        }
    }

    pub fn range(&self) -> BufferRange<'_> {
        self.buf.range(GUARD_N as u64 * 4, self.len as u64 * 4)
    }

    /// Reads the output back, panicking (with the case name) if a guard was overwritten.
    pub fn read(&self, gpu: &Gpu, case: &str) -> Vec<f32> {
        let all = gpu.read_f32(&self.buf, 0, self.len + 2 * GUARD_N);
        let (before, rest) = all.split_at(GUARD_N);
        let (out, after) = rest.split_at(self.len);
        for (side, g) in [("before", before), ("after", after)] {
            if let Some(i) = g.iter().position(|v| v.to_bits() != GUARD) {
                panic!(
                    "{}: guard {side} the output overwritten at guard element {i} ({})",
                    gpu.case(case),
                    g[i]
                );
            }
        }
        out.to_vec()
    }
}

/// Records `f` into a fresh recorder, submits and waits.
pub fn run(gpu: &Gpu, case: &str, f: impl FnOnce(&mut Recorder) -> vkgraph::Result<()>) {
    let mut rec = gpu
        .ctx
        .recorder()
        .unwrap_or_else(|e| panic!("{}: recorder: {e}", gpu.case(case)));
    rec.begin().expect("begin");
    f(&mut rec).unwrap_or_else(|e| panic!("{}: dispatch: {e}", gpu.case(case)));
    rec.submit_and_wait()
        .unwrap_or_else(|e| panic!("{}: submit: {e}", gpu.case(case)));
}

/// NaN/Inf and NMSE checks of `got` against the reference `want`.
pub fn check(gpu: &Gpu, case: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    if let Some(i) = got.iter().position(|v| !v.is_finite()) {
        panic!("{}: non-finite output {} at {i}", gpu.case(case), got[i]);
    }
    let e = nmse(got, want);
    if e.is_nan() || e > NMSE_EXACT {
        let (i, _) = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .enumerate()
            .fold((0, 0f32), |b, (i, d)| if d > b.1 { (i, d) } else { b });
        panic!(
            "{}: NMSE {e:.3e} > {NMSE_EXACT:e} (worst at {i}: got {}, want {})",
            gpu.case(case),
            got[i],
            want[i]
        );
    }
    eprintln!("{}: ok (NMSE {e:.2e})", gpu.case(case));
}

/// Two q8_1 copies in buffers laid out as codes (`cb` bytes) at 0 and (d, s) pairs (`sb`
/// bytes) at byte `scales_at`: codes and d bit-identical, the f32 block sums s equal to
/// rounding (summation order may differ between two kernels' compiled code).
pub fn assert_q8_same(
    gpu: &Gpu,
    case: &str,
    a: &Buffer,
    b: &Buffer,
    cb: u64,
    sb: u64,
    scales_at: usize,
) {
    let words = (scales_at + sb as usize) / 4;
    let (e, r) = (gpu.read_f32(a, 0, words), gpu.read_f32(b, 0, words));
    let cw = cb as usize / 4;
    let bits = |v: &[f32]| -> Vec<u32> { v.iter().map(|x| x.to_bits()).collect() };
    assert_eq!(
        bits(&e[..cw]),
        bits(&r[..cw]),
        "{}: q8_1 codes differ",
        gpu.case(case)
    );
    let at = scales_at / 4;
    for (blk, (pe, pr)) in e[at..].chunks(2).zip(r[at..].chunks(2)).enumerate() {
        assert_eq!(
            pe[0].to_bits(),
            pr[0].to_bits(),
            "{}: block {blk} d",
            gpu.case(case)
        );
        assert!(
            (pe[1] - pr[1]).abs() <= 1e-6 * (1.0 + pr[1].abs()),
            "{}: block {blk} sum {} vs {}",
            gpu.case(case),
            pe[1],
            pr[1]
        );
    }
}

/// The q8_1 copy in `buf` for `cb` bytes of codes and `sb` of scales: the scales start at
/// the first multiple of 512 bytes after the codes.
pub fn xq(
    buf: &vkgraph::backend::vulkan::Buffer,
    cb: u64,
    sb: u64,
) -> vkgraph::backend::vulkan::dispatch::mul_mat_vecq::XQ<'_> {
    let so = cb.div_ceil(512) * 512;
    vkgraph::backend::vulkan::dispatch::mul_mat_vecq::XQ {
        codes: buf.range(0, cb),
        scales: buf.range(so, sb),
    }
}
