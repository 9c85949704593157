//! `vkgraph test-ops`: every op × type × shape on a Vulkan device against the CPU reference
//! (`backend::cpu::ops`, the same quantized bytes), as ggml's test-backend-ops is for people
//! bringing up a new driver. Each case is named like
//! `mul_mat_vec(type=q4_K,m=33,k=256,n=1)`; a run prints one line per case and a summary
//! `N passed, N failed, N unsupported`; `--perf` also times each case from GPU timestamps.
//!
//! Invariants:
//! - A case passes only on a finite output within its NMSE bound of the reference
//!   (5e-4 for matmuls — the GPU sums in another order —, 1e-5 elsewhere); a kernel the
//!   device lacks is *unsupported*, counted apart, never a pass.
//! - Inputs are deterministic (xorshift), so a failure reproduces.

mod cases;
mod record;
mod record_moe;

pub use cases::{cases, Case};

use crate::backend::vulkan::{Buffer, MemoryLocation, VulkanContext};
use crate::{Error, Result};

/// How a case ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Pass { nmse: f64 },
    Fail(String),
    Unsupported(String),
}

/// Deterministic pseudo-random f32 values in [-4, 4) (xorshift), shared with the tests.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (f64::from(g) - f64::from(w)).powi(2);
        den += f64::from(w).powi(2);
    }
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

/// Device buffers of one case: upload helpers and the output read back.
pub(super) struct Io<'a> {
    pub(super) ctx: &'a VulkanContext,
    pub(super) bufs: Vec<Buffer>,
}

impl Io<'_> {
    pub(super) fn put(&mut self, bytes: &[u8]) -> Result<usize> {
        let b = self.ctx.create_buffer(
            bytes.len().max(4) as u64,
            MemoryLocation::Device,
            "test-ops",
        )?;
        self.ctx.upload(&b, 0, bytes)?;
        self.bufs.push(b);
        Ok(self.bufs.len() - 1)
    }
    pub(super) fn f32s(&mut self, v: &[f32]) -> Result<usize> {
        self.put(bytemuck::cast_slice(v))
    }
    pub(super) fn zeros(&mut self, n_f32: usize) -> Result<usize> {
        self.put(&vec![0u8; 4 * n_f32])
    }
    pub(super) fn read(&self, i: usize, n: usize) -> Result<Vec<f32>> {
        let mut out = vec![0u8; 4 * n];
        self.ctx.download(&self.bufs[i], 0, &mut out)?;
        Ok(bytemuck::pod_collect_to_vec(&out))
    }
}

/// Runs `c` on `ctx`: the outcome, and with `perf` the mean GPU µs of `reps` dispatches.
pub fn run_case(ctx: &VulkanContext, c: &Case, perf: bool) -> (Outcome, Option<f64>) {
    match record::run_inner(ctx, c, perf) {
        Ok((got, want, us)) => {
            if let Some(i) = got.iter().position(|v| !v.is_finite()) {
                return (
                    Outcome::Fail(format!("non-finite output {} at {i}", got[i])),
                    us,
                );
            }
            if let Case::TopK { k, .. } = *c {
                // Ids must match exactly (an NMSE over them would hide an off-by-one).
                let row = 2 + 2 * k as usize;
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    if i % row >= 2 && (i % row) % 2 == 0 && g != w {
                        return (
                            Outcome::Fail(format!("id {g} where the CPU has {w} (element {i})")),
                            us,
                        );
                    }
                }
            }
            if let Case::MoeRoute { k, n, .. } | Case::MoeRouterTopK { k, n, .. } = *c {
                // The chosen ids (read back as f32 after the weights) must match exactly:
                // equal logits give equal weights, so only the ids show the tie rule.
                let kn = (k * n) as usize;
                for (i, (g, w)) in got.iter().zip(&want).enumerate().skip(kn) {
                    if g != w {
                        let slot = (i - kn) / 4;
                        return (
                            Outcome::Fail(format!(
                                "expert {g} where the CPU chose {w} (token {}, slot {})",
                                slot / k as usize,
                                slot % k as usize
                            )),
                            us,
                        );
                    }
                }
            }
            let e = nmse(&got, &want);
            let bound = match c {
                Case::MulMat { .. }
                | Case::MulMatVecq { .. }
                | Case::MulMatId { .. }
                | Case::MulMatLayer { .. }
                | Case::MulMatGroup { .. } => 5e-4,
                _ => 1e-5,
            };
            if e <= bound {
                (Outcome::Pass { nmse: e }, us)
            } else {
                (Outcome::Fail(format!("NMSE {e:.3e} > {bound:e}")), us)
            }
        }
        Err(Error::Unsupported(why)) => (Outcome::Unsupported(why), None),
        Err(e) => (Outcome::Fail(e.to_string()), None),
    }
}

/// Runs the cases whose op is `op` (all with `None`) on `ctx`, printing a line per case
/// prefixed by `label` and a summary; returns (passed, failed, unsupported).
pub fn run(
    ctx: &VulkanContext,
    label: &str,
    op: Option<&str>,
    perf: bool,
    out: &mut dyn std::io::Write,
) -> (usize, usize, usize) {
    let (mut pass, mut fail, mut unsup) = (0, 0, 0);
    for c in cases().iter().filter(|c| op.is_none_or(|o| c.op() == o)) {
        let (o, us) = run_case(ctx, c, perf);
        let timing = us.map_or(String::new(), |us| {
            format!("  {us:9.2} us  {:8.1} GB/s", c.bytes() as f64 / us / 1e3)
        });
        let line = match &o {
            Outcome::Pass { nmse } => {
                pass += 1;
                format!("OK (nmse {nmse:.1e}){timing}")
            }
            Outcome::Fail(why) => {
                fail += 1;
                format!("FAIL: {why}")
            }
            Outcome::Unsupported(why) => {
                unsup += 1;
                format!("unsupported: {why}")
            }
        };
        let _ = writeln!(out, "[{label}] {}: {line}", c.name());
    }
    let _ = writeln!(
        out,
        "[{label}] {pass} passed, {fail} failed, {unsup} unsupported"
    );
    (pass, fail, unsup)
}
