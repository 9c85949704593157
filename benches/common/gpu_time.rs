//! GPU timing shared by the kernel benches: the dispatch submitted untimed until the GPU
//! has been busy for [`WARM`] (an idle H100 runs its SMs at 345 MHz and takes a while to
//! reach 1,980: without this, cases timed after a host-side pause — the DRAM copies'
//! set-up — drifted by up to 2×), then recorded `reps` times untimed and `reps` times
//! with a barrier and a timestamp after each in one submission; the median µs.

use vkgraph::backend::vulkan::{Recorder, VulkanContext};

/// How long the GPU runs the case untimed before it is timed.
pub const WARM: std::time::Duration = std::time::Duration::from_millis(30);

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median µs of one `f` (a dispatch and what it records), `None` when recording fails
/// or the device has no timestamps.
pub fn time(
    ctx: &VulkanContext,
    reps: usize,
    f: &dyn Fn(&mut Recorder) -> vkgraph::Result<()>,
) -> Option<f64> {
    time_indexed(ctx, reps, &|rec, _| f(rec))
}

/// [`time`] for a dispatch that rotates through operand copies: `f(rec, i)` with `i` the
/// repetition's index (untimed repetitions `0..reps`, timed ones `1..=reps`).
pub fn time_indexed(
    ctx: &VulkanContext,
    reps: usize,
    f: &dyn Fn(&mut Recorder, usize) -> vkgraph::Result<()>,
) -> Option<f64> {
    let start = std::time::Instant::now();
    while start.elapsed() < WARM {
        let mut warm = ctx.recorder().ok()?;
        warm.begin().ok()?;
        for i in 0..reps.max(1) {
            f(&mut warm, i).ok()?;
            warm.barrier().ok()?;
        }
        warm.submit_and_wait().ok()?;
    }
    let mut rec = ctx.recorder().ok()?;
    rec.begin().ok()?;
    for i in 0..reps {
        f(&mut rec, i).ok()?;
        rec.barrier().ok()?;
    }
    rec.timestamp("start").ok()?;
    for i in 0..reps {
        f(&mut rec, i + 1).ok()?;
        rec.barrier().ok()?;
        rec.timestamp("rep").ok()?;
    }
    rec.submit_and_wait().ok()?;
    let ts = rec.timestamps();
    (ts.len() >= 2).then(|| median(ts.windows(2).map(|p| (p[1].ns - p[0].ns) / 1e3).collect()))
}
