//! Output of `vkgraph bench`: llama-bench's markdown table plus a compare table per
//! mode against `off`, JSON (one array of rows) or CSV.

use std::fmt::Write;

use super::{Mode, Row};
use crate::passes::QkvMode;

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
    let has_off = rows.iter().any(|r| r.qkv == QkvMode::Off);
    if has_off {
        for mode in [QkvMode::Fuse, QkvMode::Reorder, QkvMode::Auto] {
            let pairs: Vec<(&Row, &Row)> = rows
                .iter()
                .filter(|r| r.qkv == mode)
                .filter_map(|r| {
                    rows.iter()
                        .find(|o| {
                            o.qkv == QkvMode::Off
                                && o.fusion == r.fusion
                                && o.test == r.test
                                && o.model == r.model
                        })
                        .map(|o| (o, r))
                })
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let off = self::mode(pairs[0].0);
            let _ = writeln!(
                s,
                "\n| model | test | t/s {off} | t/s {} | speedup |",
                self::mode(pairs[0].1)
            );
            s += "| --- | ---: | ---: | ---: | ---: |\n";
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
    }
    compare_fusion(rows, &mut s);
    s
}

/// The fusion-level compare tables: per QKV mode, each level against the lowest measured.
fn compare_fusion(rows: &[Row], s: &mut String) {
    let Some(low) = rows.iter().map(|r| r.fusion).min() else {
        return;
    };
    let mut qkvs: Vec<QkvMode> = Vec::new();
    for r in rows {
        if !qkvs.contains(&r.qkv) {
            qkvs.push(r.qkv);
        }
    }
    for q in qkvs {
        let mut levels: Vec<_> = rows
            .iter()
            .filter(|r| r.qkv == q)
            .map(|r| r.fusion)
            .collect();
        levels.sort();
        levels.dedup();
        for &level in levels.iter().filter(|&&l| l != low) {
            let pairs: Vec<(&Row, &Row)> = rows
                .iter()
                .filter(|r| r.qkv == q && r.fusion == level)
                .filter_map(|r| {
                    rows.iter()
                        .find(|o| {
                            o.qkv == q && o.fusion == low && o.test == r.test && o.model == r.model
                        })
                        .map(|o| (o, r))
                })
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n| model | test | t/s {q} fusion={low} | t/s {q} fusion={level} | speedup |"
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
