//! Output of `vkgraph bench`: llama-bench's markdown table plus a compare table per
//! mode against `off`, JSON (one array of rows) or CSV.

use std::fmt::Write;

use super::{Mode, Row};
use crate::passes::{FusionLevel, QkvMode};

fn mode(r: &Row) -> Mode {
    Mode {
        qkv: r.qkv,
        fusion: r.fusion,
    }
}

fn human_size(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

fn human_params(p: u64) -> String {
    if p >= 1_000_000_000 {
        format!("{:.2} B", p as f64 / 1e9)
    } else {
        format!("{:.2} M", p as f64 / 1e6)
    }
}

/// The markdown tables.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    s += "| model | size | params | backend | qkv | test | t/s |\n";
    s += "| --- | ---: | ---: | --- | --- | ---: | ---: |\n";
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2} ± {:.2} |",
            r.model,
            human_size(r.size_bytes),
            human_params(r.params),
            r.backend,
            mode(r),
            r.test,
            r.mean(),
            r.sd()
        );
    }
    // Each mode against `off` at the same fusion level; each fusion level against the
    // lowest one measured in the same QKV mode.
    let mut levels: Vec<FusionLevel> = rows.iter().map(|r| r.fusion).collect();
    levels.sort();
    levels.dedup();
    for &fusion in &levels {
        let off = Mode {
            qkv: QkvMode::Off,
            fusion,
        };
        for qkv in [QkvMode::Fuse, QkvMode::Reorder, QkvMode::Auto] {
            let other = Mode { qkv, fusion };
            compare(
                &mut s,
                rows,
                off,
                other,
                &off.to_string(),
                &other.to_string(),
            );
        }
    }
    if let Some(&low) = levels.first() {
        let mut qkvs: Vec<QkvMode> = Vec::new();
        for r in rows {
            if !qkvs.contains(&r.qkv) {
                qkvs.push(r.qkv);
            }
        }
        for qkv in qkvs {
            for &level in &levels[1..] {
                let (a, b) = (Mode { qkv, fusion: low }, Mode { qkv, fusion: level });
                let labels = (
                    format!("{qkv} fusion={low}"),
                    format!("{qkv} fusion={level}"),
                );
                compare(&mut s, rows, a, b, &labels.0, &labels.1);
            }
        }
    }
    s
}

/// A compare table of `other` against `base` over the (model, test) pairs both measured;
/// nothing when there are none.
fn compare(
    s: &mut String,
    rows: &[Row],
    base: Mode,
    other: Mode,
    base_label: &str,
    other_label: &str,
) {
    let pairs: Vec<(&Row, &Row)> = rows
        .iter()
        .filter(|r| mode(r) == other)
        .filter_map(|r| {
            rows.iter()
                .find(|o| mode(o) == base && o.test == r.test && o.model == r.model)
                .map(|o| (o, r))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n| model | test | t/s {base_label} | t/s {other_label} | speedup |"
    );
    *s += "| --- | ---: | ---: | ---: | ---: |\n";
    for (o, r) in pairs {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.2} | {:.3} |",
            r.model,
            r.test,
            o.mean(),
            r.mean(),
            r.mean() / o.mean()
        );
    }
}

/// JSON: an array of objects, one per row, with every sample.
pub fn json(rows: &[Row]) -> String {
    let v: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "model": r.model, "size": r.size_bytes, "params": r.params,
                "backend": r.backend, "qkv": r.qkv.name(), "fusion": r.fusion.to_string(),
                "test": r.test.to_string(),
                "avg_ts": r.mean(), "stddev_ts": r.sd(), "samples_ts": r.samples,
            })
        })
        .collect();
    serde_json::to_string_pretty(&v).expect("serializable")
}

/// CSV with a header line.
pub fn csv(rows: &[Row]) -> String {
    // `fusion` last: columns are only ever appended (scripts read them by position).
    let mut s = String::from("model,size,params,backend,qkv,test,avg_ts,stddev_ts,fusion\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{:.4},{:.4},{}",
            r.model,
            r.size_bytes,
            r.params,
            r.backend,
            r.qkv,
            r.test,
            r.mean(),
            r.sd(),
            r.fusion
        );
    }
    s
}
