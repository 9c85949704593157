//! GPU timing shared by the kernel benches: a dispatch recorded `reps` times untimed,
//! then `reps` times with a barrier and a timestamp after each; the median µs.

use vkgraph::backend::vulkan::{Recorder, VulkanContext};

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
    let mut rec = ctx.recorder().ok()?;
    rec.begin().ok()?;
    for _ in 0..reps {
        f(&mut rec).ok()?;
        rec.barrier().ok()?;
    }
    rec.timestamp("start").ok()?;
    for _ in 0..reps {
        f(&mut rec).ok()?;
        rec.barrier().ok()?;
        rec.timestamp("rep").ok()?;
    }
    rec.submit_and_wait().ok()?;
    let ts = rec.timestamps();
    (ts.len() >= 2).then(|| median(ts.windows(2).map(|p| (p[1].ns - p[0].ns) / 1e3).collect()))
}
