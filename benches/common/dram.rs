//! What the DRAM-mode kernel benches (`mat_vec`, `attention`) share: how many bytes a
//! rotation of operand copies must exceed, and the reference bandwidth of a large copy.
//! Needs `mod gpu_time` (common/gpu_time.rs) beside it.

use super::gpu_time::time;
use vkgraph::backend::vulkan::VulkanContext;

/// Bytes a DRAM-mode rotation must exceed so no dispatch finds its operand in the
/// last-level cache: 4x `VKGRAPH_BENCH_L2_MB` (default 60, the H200's L2) plus 1 MiB.
/// Returns (L2 MB, bytes).
pub fn dram_rotation() -> (u64, u64) {
    let l2_mb: u64 = std::env::var("VKGRAPH_BENCH_L2_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    (l2_mb, 4 * l2_mb * (1 << 20) + (1 << 20))
}

/// The reference bandwidth of a bench: `bytes` copied by `vkCmdCopyBuffer`, by
/// `copy.comp` one float per invocation and by its `copy_vec4` (16 bytes per invocation),
/// each timed `reps` times: their µs, bytes read + written per second being
/// `2 * bytes / µs` (infinite where one fails). `None` without timestamps.
pub fn copy_times(ctx: &VulkanContext, bytes: u64, reps: usize) -> Option<[f64; 3]> {
    use vkgraph::backend::vulkan::dispatch::copy;
    use vkgraph::backend::vulkan::MemoryLocation;
    let a = ctx
        .create_buffer(bytes, MemoryLocation::Device, "copy_a")
        .ok()?;
    let b = ctx
        .create_buffer(bytes, MemoryLocation::Device, "copy_b")
        .ok()?;
    let buffer = time(ctx, reps, &|rec| rec.copy_buffer(a.whole(), b.whole()))?;
    let shader = time(ctx, reps, &|rec| {
        copy::copy_f32_f32(rec, a.whole(), b.whole(), bytes / 4)
    })
    .unwrap_or(f64::INFINITY);
    let vec4 = time(ctx, reps, &|rec| {
        copy::copy_vec4(rec, a.whole(), b.whole(), bytes / 16)
    })
    .unwrap_or(f64::INFINITY);
    Some([buffer, shader, vec4])
}
