//! Options read once (DESIGN.md decision 18): every `VKGRAPH_*` environment variable the
//! program honours is read here, by [`Options::from_env`], into one typed struct; the CLI
//! overlays its flags and hands the values down. Nothing below the CLI reads the
//! environment (benches and tests set the fields directly).
//!
//! | variable | field | meaning |
//! |---|---|---|
//! | `VKGRAPH_QKV` | [`Options::qkv`] | default sibling-matmul mode (off, fuse, reorder, group, auto) |
//! | `VKGRAPH_FUSION` | [`Options::fusion`] | default fusion level (none, ops, layer) |
//! | `VKGRAPH_SCHED_DEBUG=1` | [`Options::sched_debug`] | print the assignment dump of every new graph |
//! | `VKGRAPH_COOPMAT=0/1` | [`Options::coopmat`] | cooperative-matrix prompt matmuls, and prompt attention from 16 tokens, where the device has them (default 1) |
//! | `VKGRAPH_SPLIT_K=0/1/N` | [`Options::split_k`] | cooperative-matrix prompt matmuls whose grid cannot fill the device (a MoE router's 128 rows) split k over more workgroups and add the partial blocks (default 1: grids under 128 workgroups; 0: off, for A/B; N ≥ 2: grids under N, tuning) |
//! | `VKGRAPH_MOE_GROUP=0/1` | [`Options::moe_group`] | prompt batches' expert matmuls grouped by expert (default 1; 0: one mat-vec per token and slot, for A/B) |
//! | `VKGRAPH_MOE_ROUTE=0/1` | [`Options::moe_route`] | decode: the first expert matmul of a MoE layer ranks the router's logits itself instead of waiting for a top-k (default 1; 0: the router + top-k kernel, for A/B) |
//! | `VKGRAPH_MMVQ=0/1` | [`Options::mat_vec`] | decode matmuls: float mat-vec / integer-dot everywhere (unset: the device decides) |
//! | `VKGRAPH_MMVQ_LAYER=0/1` | [`Options::mat_vecq_layer`] | decode matmuls on the integer-dot path take the decode-layer folds (norm prologue, residual / SwiGLU / bias epilogue) in their own kernel, `mul_mat_vecq_layer`, each quantizing its output for the next in a q8_1 epilogue (default 1: 5 stages per llama layer, +3–7 % tg128 on the H100, docs/BENCHMARKS.md; 0 for A/B) |
//! | `VKGRAPH_MMV_SHAPE=WGxROWS` | [`Options::mat_vec_shape`] | decode mat-vec launch shape (workgroup width × rows per workgroup; tuning, e.g. `64x4`; unset: chosen per shape) |
//! | `VKGRAPH_MMVQ_SHAPE=WGxROWS` | [`Options::mat_vecq_shape`] | the same for the integer-dot mat-vec, dense and expert-indexed (rows 1..=16; unset: chosen per shape) |
//! | `VKGRAPH_MMVQ_ID_SHAPE=WGxROWS` | [`Options::mat_vecq_id_shape`] | the integer-dot expert-indexed mat-vec only (MUL_MAT_ID at decode; before `VKGRAPH_MMVQ_SHAPE` there; tuning) |
//! | `VKGRAPH_ATTN_SPLIT_ROWS=N` | [`Options::attn_split_rows`] | decode split-K attention: cache rows per split workgroup (64 or 128; tuning; unset: the default) |
//! | `VKGRAPH_ATTN_VPRE=0/1` | [`Options::attn_split_vpre`] | decode split-K attention: each tile's V rows loaded with its K rows (`VPRE`; tuning; unset: off) |
//! | `VKGRAPH_ATTN_QB=1/2/4` | [`Options::attn_split_qb`] | decode split-K attention: at most this many query heads per workgroup (tuning; unset: as many of a GQA group as fit, up to 4) |
//! | `VKGRAPH_ATTN_MIN_SPLIT=N` | [`Options::attn_min_split`] | decode attention splits the context from N planned cache rows on (tuning; unset: 512) |
//! | `VKGRAPH_CACHE` | [`Options::cache_dir`] | where the default model lives (else `$HOME/.cache/vkgraph`) |
//! | `VKGRAPH_FENCE_TIMEOUT` | [`Options::fence_timeout_s`] | seconds a GPU submission may run before it is an error (0: no limit; unset: 300) |
//! | `VKGRAPH_FENCE_SPIN=US` | [`Options::fence_spin_us`] | microseconds a wait for the GPU polls (a busy core) before it blocks (0: block at once; unset: 20000 on a GPU, 0 on a CPU driver) |
//! | `VKGRAPH_PIPELINE_STATS=1` | [`Options::pipeline_stats`] | log the driver's statistics of every compute pipeline (registers, spills; `RUST_LOG=info`, where the device has `VK_KHR_pipeline_executable_properties`) |

use std::path::PathBuf;

use crate::backend::vulkan::dispatch::mul_mat::MatVecShape;
use crate::backend::vulkan::MatVecPath;
use crate::passes::{FusionLevel, QkvMode};
use crate::{Error, Result};

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Options {
    pub qkv: QkvMode,
    pub fusion: FusionLevel,
    pub sched_debug: bool,
    pub coopmat: bool,
    /// Split-K of coopmat prompt matmuls whose grid has fewer workgroups than this
    /// (`dispatch::mul_mat::split_k`; 0: never).
    pub split_k: u32,
    /// MUL_MAT_ID of prompt batches grouped by expert (`dispatch::moe::groups_by_expert`).
    pub moe_group: bool,
    /// Decode expert matmuls route themselves (`passes::layer::route_in_experts`).
    pub moe_route: bool,
    pub mat_vec: MatVecPath,
    /// The integer-dot fused mat-vec (`dispatch::mul_mat::vecq_layer_support`).
    pub mat_vecq_layer: bool,
    pub mat_vec_shape: Option<MatVecShape>,
    pub mat_vecq_shape: Option<MatVecShape>,
    pub mat_vecq_id_shape: Option<MatVecShape>,
    /// Rows per split-K attention workgroup (`dispatch::attention::split_shape`).
    pub attn_split_rows: Option<u32>,
    /// Planned cache rows from which decode attention splits the context.
    pub attn_min_split: Option<u32>,
    /// Whether split-K decode attention preloads each tile's V rows (`None`: the default).
    pub attn_split_vpre: Option<bool>,
    /// Most query heads per split-K decode attention workgroup (1, 2 or 4; tuning; `None`:
    /// the planner's choice).
    pub attn_split_qb: Option<u32>,
    pub cache_dir: Option<PathBuf>,
    pub fence_timeout_s: Option<u32>,
    pub fence_spin_us: Option<u32>,
    pub pipeline_stats: bool,
}

impl Default for Options {
    /// The values with no variable set.
    fn default() -> Self {
        Options {
            qkv: QkvMode::Auto,
            fusion: FusionLevel::Layer,
            sched_debug: false,
            coopmat: true,
            split_k: crate::backend::vulkan::dispatch::mul_mat::SPLIT_K_GRID,
            moe_group: true,
            moe_route: true,
            mat_vec: MatVecPath::Auto,
            mat_vecq_layer: true,
            mat_vec_shape: None,
            mat_vecq_shape: None,
            mat_vecq_id_shape: None,
            attn_split_rows: None,
            attn_min_split: None,
            attn_split_vpre: None,
            attn_split_qb: None,
            cache_dir: None,
            fence_timeout_s: None,
            fence_spin_us: None,
            pipeline_stats: false,
        }
    }
}

impl Options {
    /// Reads every `VKGRAPH_*` variable; a value that does not parse is a usage error
    /// naming the variable.
    pub fn from_env() -> Result<Options> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Options::from_env`] over any source of variables (tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Options> {
        let mut o = Options::default();
        if let Some(v) = get("VKGRAPH_QKV") {
            o.qkv = QkvMode::parse(&v).map_err(|e| Error::Usage(format!("VKGRAPH_QKV: {e}")))?;
        }
        if let Some(v) = get("VKGRAPH_FUSION") {
            o.fusion =
                FusionLevel::parse(&v).map_err(|e| Error::Usage(format!("VKGRAPH_FUSION: {e}")))?;
        }
        o.sched_debug = flag(&get, "VKGRAPH_SCHED_DEBUG")?.unwrap_or(false);
        o.coopmat = flag(&get, "VKGRAPH_COOPMAT")?.unwrap_or(true);
        if let Some(v) = get("VKGRAPH_SPLIT_K") {
            o.split_k = match v.trim() {
                "0" => 0,
                "1" => o.split_k,
                t => t.parse().ok().filter(|&g| g >= 2).ok_or_else(|| {
                    Error::Usage(format!(
                        "VKGRAPH_SPLIT_K={v}: expected 0 (off), 1 (on) or a workgroup count >= 2"
                    ))
                })?,
            };
        }
        o.moe_group = flag(&get, "VKGRAPH_MOE_GROUP")?.unwrap_or(true);
        o.moe_route = flag(&get, "VKGRAPH_MOE_ROUTE")?.unwrap_or(true);
        o.pipeline_stats = flag(&get, "VKGRAPH_PIPELINE_STATS")?.unwrap_or(false);
        o.mat_vecq_layer = flag(&get, "VKGRAPH_MMVQ_LAYER")?.unwrap_or(true);
        o.mat_vec = match flag(&get, "VKGRAPH_MMVQ")? {
            None => MatVecPath::Auto,
            Some(true) => MatVecPath::Int8,
            Some(false) => MatVecPath::Float,
        };
        if let Some(v) = get("VKGRAPH_MMV_SHAPE") {
            o.mat_vec_shape = Some(parse_shape("VKGRAPH_MMV_SHAPE", &v, true)?);
        }
        if let Some(v) = get("VKGRAPH_MMVQ_SHAPE") {
            o.mat_vecq_shape = Some(parse_shape("VKGRAPH_MMVQ_SHAPE", &v, false)?);
        }
        if let Some(v) = get("VKGRAPH_MMVQ_ID_SHAPE") {
            o.mat_vecq_id_shape = Some(parse_shape("VKGRAPH_MMVQ_ID_SHAPE", &v, false)?);
        }
        if let Some(v) = get("VKGRAPH_ATTN_SPLIT_ROWS") {
            o.attn_split_rows = Some(match v.trim() {
                "64" => 64,
                "128" => 128,
                _ => {
                    return Err(Error::Usage(format!(
                        "VKGRAPH_ATTN_SPLIT_ROWS={v}: expected 64 or 128"
                    )))
                }
            });
        }
        o.attn_split_vpre = flag(&get, "VKGRAPH_ATTN_VPRE")?;
        if let Some(v) = get("VKGRAPH_ATTN_QB") {
            o.attn_split_qb = Some(match v.trim() {
                "1" => 1,
                "2" => 2,
                "4" => 4,
                _ => {
                    return Err(Error::Usage(format!(
                        "VKGRAPH_ATTN_QB={v}: expected 1, 2 or 4"
                    )))
                }
            });
        }
        if let Some(v) = get("VKGRAPH_ATTN_MIN_SPLIT") {
            o.attn_min_split = Some(v.trim().parse().map_err(|_| {
                Error::Usage(format!("VKGRAPH_ATTN_MIN_SPLIT={v}: expected a row count"))
            })?);
        }
        o.cache_dir = get("VKGRAPH_CACHE")
            .map(PathBuf::from)
            .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".cache/vkgraph")));
        if let Some(v) = get("VKGRAPH_FENCE_TIMEOUT") {
            o.fence_timeout_s = Some(v.parse().map_err(|_| {
                Error::Usage(format!(
                    "VKGRAPH_FENCE_TIMEOUT={v}: expected whole seconds (0: no limit)"
                ))
            })?);
        }
        if let Some(v) = get("VKGRAPH_FENCE_SPIN") {
            o.fence_spin_us = Some(v.trim().parse().map_err(|_| {
                Error::Usage(format!(
                    "VKGRAPH_FENCE_SPIN={v}: expected whole microseconds (0: no polling)"
                ))
            })?);
        }
        Ok(o)
    }
}

/// `0` / `1` (also `false` / `true`), or unset.
fn flag(get: &impl Fn(&str) -> Option<String>, key: &str) -> Result<Option<bool>> {
    match get(key).as_deref() {
        None => Ok(None),
        Some("0") | Some("false") => Ok(Some(false)),
        Some("1") | Some("true") => Ok(Some(true)),
        Some(v) => Err(Error::Usage(format!("{key}={v}: expected 0 or 1"))),
    }
}

/// A `WGxROWS` launch shape: the width a power of two 16..=1024, 1..=16 rows (an even
/// count where `even_rows`: the float mat-vec's GLU pairs rows).
fn parse_shape(name: &str, v: &str, even_rows: bool) -> Result<MatVecShape> {
    let bad = || {
        Error::Usage(format!(
            "{name}={v}: expected WGxROWS (a power of two 16..=1024, {} row count up to 16)",
            if even_rows { "an even" } else { "a" }
        ))
    };
    let (wg, rows) = v.split_once('x').ok_or_else(bad)?;
    let shape = MatVecShape {
        wg: wg.parse().map_err(|_| bad())?,
        rows: rows.parse().map_err(|_| bad())?,
    };
    if !shape.wg.is_power_of_two()
        || !(16..=1024).contains(&shape.wg)
        || shape.rows == 0
        || (even_rows && shape.rows % 2 != 0)
        || shape.rows > 16
    {
        return Err(bad());
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_fill_the_struct_and_bad_values_are_errors() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_string())
        };
        let o = Options::from_vars(vars(&[
            ("VKGRAPH_QKV", "reorder"),
            ("VKGRAPH_SCHED_DEBUG", "1"),
            ("VKGRAPH_COOPMAT", "0"),
            ("VKGRAPH_MMVQ", "0"),
            ("VKGRAPH_CACHE", "/tmp/c"),
            ("VKGRAPH_FENCE_TIMEOUT", "7"),
            ("VKGRAPH_PIPELINE_STATS", "1"),
            ("VKGRAPH_MOE_GROUP", "0"),
            ("VKGRAPH_MOE_ROUTE", "0"),
            ("VKGRAPH_ATTN_MIN_SPLIT", "2048"),
            ("VKGRAPH_ATTN_VPRE", "1"),
            ("VKGRAPH_ATTN_QB", "1"),
            ("VKGRAPH_FENCE_SPIN", "2000"),
        ]))
        .unwrap();
        assert_eq!(o.fence_spin_us, Some(2000));
        assert!(!o.moe_group && !o.moe_route);
        assert_eq!(o.attn_min_split, Some(2048));
        assert_eq!(o.attn_split_vpre, Some(true));
        assert_eq!(o.attn_split_qb, Some(1));
        for bad in [
            ("VKGRAPH_ATTN_MIN_SPLIT", "lots"),
            ("VKGRAPH_ATTN_QB", "3"),
            ("VKGRAPH_MOE_ROUTE", "maybe"),
            ("VKGRAPH_FENCE_SPIN", "fast"),
        ] {
            let e = Options::from_vars(move |k: &str| (k == bad.0).then(|| bad.1.to_string()));
            assert!(e.is_err_and(|e| e.to_string().contains(bad.0)), "{bad:?}");
        }
        assert_eq!(o.fence_timeout_s, Some(7));
        assert!(o.pipeline_stats);
        assert!(Options::from_vars(vars(&[("VKGRAPH_FENCE_TIMEOUT", "soon")])).is_err());
        assert_eq!(o.qkv, QkvMode::Reorder);
        assert!(o.sched_debug && !o.coopmat);
        assert_eq!(o.mat_vec, MatVecPath::Float);
        assert_eq!(o.cache_dir, Some(PathBuf::from("/tmp/c")));
        let d = Options::from_vars(vars(&[])).unwrap();
        assert_eq!(
            (d.qkv, d.sched_debug, d.coopmat, d.mat_vec, d.pipeline_stats),
            (QkvMode::Auto, false, true, MatVecPath::Auto, false)
        );
        assert!(d.moe_group && d.moe_route);
        assert_eq!(
            (d.attn_min_split, d.attn_split_vpre, d.attn_split_qb),
            (None, None, None)
        );
        let grid = crate::backend::vulkan::dispatch::mul_mat::SPLIT_K_GRID;
        for (v, want) in [("0", 0), ("1", grid), ("400", 400)] {
            let o = Options::from_vars(move |k: &str| (k == "VKGRAPH_SPLIT_K").then(|| v.into()));
            assert_eq!(o.unwrap().split_k, want, "VKGRAPH_SPLIT_K={v}");
        }
        assert_eq!(d.split_k, grid);
        for bad in [
            ("VKGRAPH_QKV", "sideways"),
            ("VKGRAPH_MMVQ", "2"),
            ("VKGRAPH_COOPMAT", "yes"),
            ("VKGRAPH_SPLIT_K", "-3"),
        ] {
            let e = Options::from_vars(move |k: &str| (k == bad.0).then(|| bad.1.to_string()));
            assert!(e.unwrap_err().to_string().contains(bad.0), "{bad:?}");
        }
    }
}
