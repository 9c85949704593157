//! Per-op GPU profile: timestamps aggregated by label (op × weight type × shape, or a
//! whole stage), with count, total and average µs, achieved GB/s and GFLOP/s, and the
//! share of the pass. The table says which timestamp mode produced it.

use std::collections::HashMap;
use std::fmt::Write;

use crate::backend::{NodeTime, ProfileMode};

/// Aggregated profile rows, most expensive first.
pub fn table(times: &[NodeTime], mode: ProfileMode, passes: usize) -> String {
    let mut agg: HashMap<&str, (usize, f64, u64, u64)> = HashMap::new();
    for t in times {
        let e = agg.entry(t.label.as_str()).or_default();
        e.0 += 1;
        e.1 += t.ns;
        e.2 += t.bytes;
        e.3 += t.flops;
    }
    let total: f64 = times.iter().map(|t| t.ns).sum();
    let mut rows: Vec<_> = agg.into_iter().collect();
    rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    let how = match mode {
        ProfileMode::PerNode => "per node (a barrier after every node: serialized)",
        ProfileMode::PerStage => "per stage (timestamps at barriers only: concurrency as it runs)",
        ProfileMode::Off => "off",
    };
    let mut s = format!(
        "profile: {how}; {} timestamps over {passes} pass(es), {:.1} µs GPU time per pass\n",
        times.len(),
        total / 1e3 / passes.max(1) as f64
    );
    s += "| op | count | total µs | avg µs | GB/s | GFLOP/s | share |\n";
    s += "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for (label, (count, ns, bytes, flops)) in rows {
        let _ = writeln!(
            s,
            "| {} | {count} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} % |",
            label.replace('|', "/"),
            ns / 1e3,
            ns / 1e3 / count as f64,
            bytes as f64 / ns.max(1e-9),
            flops as f64 / ns.max(1e-9),
            100.0 * ns / total.max(1e-9)
        );
    }
    s
}
