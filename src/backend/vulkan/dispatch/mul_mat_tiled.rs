//! The tiled (prompt-batch) side of `dispatch::mul_mat`: which kernel a batch of more than
//! `MAT_VEC_MAX_N` tokens takes (`mul_mat.comp`, scalar; `mul_mat_coopmat.comp` on
//! cooperative matrices, [`TiledKernel`]), the cooperative-matrix tiles ([`CoopTile`]:
//! dense, small, expert-indexed), and split-K for grids too small to fill the device
//! ([`split_k`], its scratch [`CoopScratch`] and reduction [`sum_splits`],
//! `sum_splits.comp`). `mul_mat::record` and `dispatch::moe` launch them.

use ash::vk;
use bytemuck::{Pod, Zeroable};

use super::mul_mat::{Kernel, MAT_VEC_MAX_N};
use super::{bind, count_u32};
use crate::backend::vulkan::{BufferRange, Caps, CoopMatShape, Recorder, ShaderId};
use crate::{Error, Result};

/// Tile of `mul_mat.comp` (`BM` weight rows × `BN` tokens).
const TILE_M: u32 = 64;
const TILE_N: u32 = 64;
/// The tile of `mul_mat_coopmat.comp` / `mul_mat_id_coopmat.comp` (their `BM`, `BN`, `BK`,
/// `WM`, `WN`): a `bm` × `bn` tile (weight rows × tokens), `bk` of k per step, `wm` × `wn`
/// subgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CoopTile {
    bm: u32,
    bn: u32,
    bk: u32,
    wm: u32,
    wn: u32,
}

impl CoopTile {
    /// The dense kernel: 64 × 256 × 64 on 2 × 4 subgroups, one shared buffer per tile
    /// (the next step waits in registers): each dequantized weight value serves 256
    /// tokens. Before the ninth session: 128 × 128 × 32 with two buffers; smaller tiles
    /// measured slower on the H200 (64 × 128, 128 × 64, 64 × 64; docs/BENCHMARKS.md,
    /// seventh session).
    const DENSE: CoopTile = CoopTile {
        bm: 64,
        bn: 256,
        bk: 64,
        wm: 2,
        wn: 4,
    };
    /// The expert-indexed kernel: 128 × 128 × 64 on 2 × 4 subgroups. Narrower tiles for
    /// the ~32-pair buckets of a 512-token batch of a 128-expert model measured no faster
    /// (64 × 32 and 64 × 64 on 2 × 2: within noise; 128 × 32 on 4 × 1: −40 %; H100,
    /// fifteenth session), and wide ones reuse each dequantized weight over long prompts.
    const ID: CoopTile = CoopTile {
        bm: 128,
        bn: 128,
        bk: 64,
        wm: 2,
        wn: 4,
    };

    /// The dense kernel's `_small` variants: 64 × 32 × 64 on 2 × 2 subgroups, for
    /// matmuls whose [`CoopTile::DENSE`] grid has fewer than [`SMALL_GRID`] workgroups
    /// (qwen3-0.6b's 1,024-row matrices at 512 tokens: 32; a MoE router's 128 rows: 4):
    /// 8× as many workgroups, each as many k steps.
    const SMALL: CoopTile = CoopTile {
        bm: 64,
        bn: 32,
        bk: 64,
        wm: 2,
        wn: 2,
    };

    fn subgroups(self) -> u32 {
        self.wm * self.wn
    }

    /// Shared memory in bytes: the W and x tiles in f16 with 8 halves of padding per
    /// row, the row table (3 words per tile row). The output staging (one 16 × 8 f32
    /// matrix per subgroup) reuses the W tile.
    fn shared_bytes(self) -> u32 {
        (self.bm + self.bn) * (self.bk + 8) * 2 + 3 * self.bm * 4
    }

    /// Whether the kernel's layout works for workgroups of `wg` invocations within
    /// `shared` bytes (`extra`: the expert-indexed form's per-column words).
    fn fits(self, wg: u32, shared: u32, extra: u32) -> bool {
        self.shared_bytes() + extra <= shared
            && self.bm * (self.bk + 8) * 2 >= self.subgroups() * 16 * 8 * 4
            && (self.bm * self.bk / 16) % wg == 0
            && (self.bn * self.bk / 8) % wg == 0
    }
}

/// Dense coopmat grids with fewer workgroups than this take [`CoopTile::SMALL`].
const SMALL_GRID: u32 = 64;
/// Coopmat grids (after the small-tile choice) with fewer workgroups than this split k
/// by default ([`split_k`]'s `below`): a MoE router's 128 rows at 512 tokens ran 32
/// workgroups of 32 k steps each (~100 µs a layer, H100).
pub const SPLIT_K_GRID: u32 = 128;
/// Fewest workgroups a split-K dispatch aims at (several per SM of a large GPU; at least
/// `below`).
const SPLIT_K_TARGET: u32 = 256;
/// Fewest k steps (`bk` values each) a split takes.
const SPLIT_K_MIN_STEPS: u32 = 4;

/// The tile the cooperative-matrix kernel takes for `m` rows × `n` tokens: the dense one,
/// or under `TiledKernel::Auto` the small one where the dense grid would be small.
fn coop_tile(caps: &Caps, tiled: TiledKernel, m: u32, n: u32) -> CoopTile {
    let (dense, small) = (CoopTile::DENSE, CoopTile::SMALL);
    let grid = u64::from(m.div_ceil(dense.bm)) * u64::from(n.div_ceil(dense.bn));
    if tiled == TiledKernel::Auto
        && grid < u64::from(SMALL_GRID)
        && small.fits(
            small.subgroups() * caps.subgroup_size,
            caps.max_compute_shared_memory_size,
            0,
        )
    {
        small
    } else {
        dense
    }
}

/// How a cooperative-matrix matmul whose grid is too small to fill the device splits k:
/// `ks` workgroups along z, each over `kc` values of k (a multiple of the tile's step),
/// writing a partial `[m, n]` block that `sum_splits.comp` adds up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitK {
    pub ks: u32,
    pub kc: u32,
}

impl SplitK {
    /// Bytes of the partial blocks.
    pub fn bytes(self, m: u32, n: u32) -> u64 {
        4 * u64::from(self.ks) * u64::from(m) * u64::from(n)
    }

    /// Whether the kernel can run this split for the matmul (some threshold of
    /// [`split_k`] would give it: whole steps of k per split, at least 2 splits, all of
    /// them non-empty, within the device's grid).
    pub(crate) fn fits(
        self,
        caps: &Caps,
        tiled: TiledKernel,
        k: u32,
        m: u32,
        n: u32,
        nseg: usize,
    ) -> bool {
        split_k(caps, tiled, k, m, n, nseg, u32::MAX).is_some()
            && self.kc % CoopTile::DENSE.bk == 0
            && self.kc > 0
            && self.ks == k.div_ceil(self.kc)
            && self.ks >= 2
            && self.ks <= caps.max_compute_work_group_count[2]
    }
}

/// The split-K shape of a prompt matmul (`n > MAT_VEC_MAX_N`) of `m` rows of `k` values in
/// `nseg` segments on the cooperative-matrix kernel, or `None`: no coopmat kernel, a
/// fused (segmented) weight (split on write), or a grid of at least `below` workgroups
/// (the executor's default [`SPLIT_K_GRID`]; 0: never). About
/// max([`SPLIT_K_TARGET`], `below`) workgroups in all, each at least
/// [`SPLIT_K_MIN_STEPS`] steps of k.
pub fn split_k(
    caps: &Caps,
    tiled: TiledKernel,
    k: u32,
    m: u32,
    n: u32,
    nseg: usize,
    below: u32,
) -> Option<SplitK> {
    let coop = match tiled {
        TiledKernel::Scalar => false,
        TiledKernel::Auto | TiledKernel::Coopmat => coopmat_shape(caps).is_some(),
    };
    if !coop || n <= MAT_VEC_MAX_N || nseg > 1 || m == 0 {
        return None;
    }
    let t = coop_tile(caps, tiled, m, n);
    let grid = m.div_ceil(t.bm).saturating_mul(n.div_ceil(t.bn));
    split_shape(grid, k, t.bk, below).filter(|s| s.ks <= caps.max_compute_work_group_count[2])
}

/// [`split_k`]'s arithmetic for a grid of `grid` workgroups over `k` values in steps of
/// `bk`: `None` from `below` workgroups up, or where fewer than 2 splits of at least
/// [`SPLIT_K_MIN_STEPS`] steps fit.
fn split_shape(grid: u32, k: u32, bk: u32, below: u32) -> Option<SplitK> {
    if grid == 0 || grid >= below {
        return None;
    }
    let steps = k.div_ceil(bk);
    let ks = SPLIT_K_TARGET
        .max(below)
        .div_ceil(grid)
        .min(steps / SPLIT_K_MIN_STEPS);
    if ks < 2 {
        return None;
    }
    let kc = steps.div_ceil(ks) * bk;
    let ks = k.div_ceil(kc);
    (ks >= 2).then_some(SplitK { ks, kc })
}

/// Scratch of a prompt matmul on the cooperative-matrix kernel ([`mul_mat_with`]'s
/// `x16`): `range` holds the f16 copy of x (`k·n` halves, from a 16-byte aligned offset)
/// and, with `split`, the partial blocks after it ([`tiled_scratch_bytes`]).
#[derive(Clone, Copy)]
pub struct CoopScratch<'a> {
    pub range: BufferRange<'a>,
    pub split: Option<SplitK>,
}

/// Bytes of scratch a prompt matmul on the cooperative-matrix kernel uses (the `x16`
/// argument of [`mul_mat_with`]): the f16 copy of x (`k·n` halves, rounded up to 16
/// bytes) and, with `split` (see [`split_k`]), the partial blocks after it.
pub fn tiled_scratch_bytes(k: u32, m: u32, n: u32, split: Option<SplitK>) -> u64 {
    let x16 = (2 * u64::from(k) * u64::from(n)).div_ceil(16) * 16;
    x16 + split.map_or(0, |s| s.bytes(m, n))
}

/// Which tiled kernel takes batches of more than [`MAT_VEC_MAX_N`] tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TiledKernel {
    /// Cooperative matrices when [`coopmat_shape`] finds a shape, else scalar.
    Auto,
    /// The scalar kernel.
    Scalar,
    /// The cooperative-matrix kernel (`Error::Unsupported` where it is unusable).
    Coopmat,
}

/// The cooperative-matrix shape `mul_mat_coopmat.comp` is built for, when `caps` lists it
/// and the device has what the kernel needs besides (fp16 arithmetic, 16-bit storage, the
/// Vulkan memory model, subgroup ids, room for 8 subgroups and the shared tiles); `None`
/// otherwise.
///
/// The kernel uses M×N×K = 16×8×16, f16·f16+f32→f32 at subgroup scope (written for the
/// NV extension's distinct A / B types; shaderc 0.10 would compile 16×16×16 as well).
pub fn coopmat_shape(caps: &Caps) -> Option<&CoopMatShape> {
    use vk::ComponentTypeKHR as C;
    let tile = CoopTile::DENSE;
    let wg = tile.subgroups() * caps.subgroup_size;
    let ready = caps.fp16
        && caps.storage_16bit
        && caps.features.vulkan_memory_model.is_some()
        && caps.subgroup_ops.contains(vk::SubgroupFeatureFlags::BASIC)
        && caps.subgroup_size.is_power_of_two()
        && wg <= caps.max_compute_work_group_invocations
        && wg <= caps.max_compute_work_group_size[0]
        && tile.fits(wg, caps.max_compute_shared_memory_size, 0);
    if !ready {
        return None;
    }
    caps.cooperative_matrix.iter().find(|s| {
        (s.m, s.n, s.k) == (16, 8, 16)
            && s.a == C::FLOAT16
            && s.b == C::FLOAT16
            && s.c == C::FLOAT32
            && s.result == C::FLOAT32
            && !s.saturating
            && s.scope == vk::ScopeKHR::SUBGROUP
    })
}

/// Whether `mul_mat_id_coopmat.comp`'s tile fits this device where [`coopmat_shape`]
/// finds the dense one usable: its shared tiles plus two words per tile column (`c_x`,
/// `c_d`: `dispatch::moe`).
pub(crate) fn coopmat_id_fits(caps: &Caps) -> bool {
    let t = CoopTile::ID;
    coopmat_shape(caps).is_some()
        && t.subgroups() <= CoopTile::DENSE.subgroups()
        && t.fits(
            t.subgroups() * caps.subgroup_size,
            caps.max_compute_shared_memory_size,
            8 * t.bn,
        )
}

/// Push constants of `shaders/sum_splits.comp`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SumPush {
    len: u32,
    ks: u32,
    p_off: u32,
    d_off: u32,
}

/// `dst[i] = Σ_z part[z·len + i]` over `ks` blocks of `len` f32 values, in order of z
/// (`sum_splits.comp`: the reduction of a split-K matmul).
pub fn sum_splits(
    rec: &mut Recorder,
    part: BufferRange<'_>,
    dst: BufferRange<'_>,
    len: u64,
    ks: u32,
) -> Result<()> {
    let shader = ShaderId::sum_splits;
    let caps = rec.caps();
    let (rp, p_off) = bind(caps, &part, 4, len * u64::from(ks), "sum_splits part")?;
    let (rd, d_off) = bind(caps, &dst, 4, len, "sum_splits dst")?;
    let push = SumPush {
        len: count_u32(len, "sum_splits")?,
        ks,
        p_off,
        d_off,
    };
    if len == 0 {
        return Ok(());
    }
    let groups = super::groups_1d(caps, shader, len)?;
    rec.dispatch(shader, &[], &[rp, rd], bytemuck::bytes_of(&push), groups)
}

/// [`tiled_launch`] for the dense kernel over `m` rows × `n` tokens: `Auto` takes the
/// small tile for small grids; `Coopmat` keeps the wide one, so tests that force it
/// (tests/vk_mul_mat.rs) still cover it at their small shapes.
pub(crate) fn dense_launch(
    caps: &Caps,
    tiled: TiledKernel,
    x_vec4: u32,
    m: u32,
    n: u32,
    what: &str,
) -> Result<TiledLaunch> {
    let mut launch = tiled_launch(caps, tiled, x_vec4, false, what)?;
    let small = CoopTile::SMALL;
    if launch.coop && coop_tile(caps, tiled, m, n) == small {
        launch.kernel = Kernel::CoopSmall;
        launch.tile = [small.bm, small.bn];
        launch.spec[0] = small.subgroups() * caps.subgroup_size;
    }
    Ok(launch)
}

/// How a tiled kernel is launched: which family, its tile (weight rows × columns) and the
/// specialization constants (0: workgroup size of the coopmat kernel; 2: x readable as
/// vec4).
pub(crate) struct TiledLaunch {
    pub kernel: Kernel,
    /// Whether it is the cooperative-matrix kernel.
    pub coop: bool,
    pub tile: [u32; 2],
    pub spec: [u32; 3],
}

/// The tiled kernel `tiled` asks for on this device (shared by `mul_mat` and the
/// expert-indexed `mul_mat_id` of `dispatch::moe`). `TiledKernel::Coopmat` where
/// [`coopmat_shape`] is `None` is `Error::Unsupported`.
pub(crate) fn tiled_launch(
    caps: &Caps,
    tiled: TiledKernel,
    x_vec4: u32,
    id: bool,
    what: &str,
) -> Result<TiledLaunch> {
    let t = if id { CoopTile::ID } else { CoopTile::DENSE };
    let coop = match tiled {
        TiledKernel::Auto => coopmat_shape(caps).is_some(),
        TiledKernel::Scalar => false,
        TiledKernel::Coopmat => {
            if coopmat_shape(caps).is_none() {
                return Err(Error::Unsupported(format!(
                    "{what}: device {} has no usable cooperative-matrix shape \
                     (needs 16x8x16 f16*f16+f32->f32, subgroup scope, shaderFloat16, \
                     vulkanMemoryModel, {} bytes of shared memory)",
                    caps.name,
                    t.shared_bytes()
                )));
            }
            true
        }
    };
    Ok(if coop {
        TiledLaunch {
            kernel: Kernel::Coop,
            coop,
            tile: [t.bm, t.bn],
            spec: [t.subgroups() * caps.subgroup_size, 0, x_vec4],
        }
    } else {
        // Constant ids 0 and 1 are unused by the scalar kernel (ignored by Vulkan).
        TiledLaunch {
            kernel: Kernel::Tiled,
            coop,
            tile: [TILE_M, TILE_N],
            spec: [0, 0, x_vec4],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_shapes() {
        let sk = |ks, kc| Some(SplitK { ks, kc });
        // A MoE router at 512 tokens: 32 small tiles of 32 steps -> 8 splits of 4 steps.
        assert_eq!(split_shape(32, 2048, 64, SPLIT_K_GRID), sk(8, 256));
        // qwen3-30b-a3b's attention output: 64 wide tiles, k 4096 -> 4 splits.
        assert_eq!(split_shape(64, 4096, 64, SPLIT_K_GRID), sk(4, 1024));
        // One tile, a k that leaves the last split short (68 steps: 17 of 4).
        assert_eq!(split_shape(1, 4352, 64, SPLIT_K_GRID), sk(17, 256));
        // 35 tiles: 8 splits of 9 steps, the last of 5.
        assert_eq!(split_shape(35, 4352, 64, SPLIT_K_GRID), sk(8, 576));
        // Enough workgroups, too short a k, or off.
        assert_eq!(split_shape(128, 4096, 64, SPLIT_K_GRID), None);
        assert_eq!(split_shape(8, 448, 64, SPLIT_K_GRID), None);
        assert_eq!(split_shape(8, 4096, 64, 0), None);
        // A higher threshold aims at as many workgroups.
        assert_eq!(split_shape(160, 2048, 64, 400), sk(3, 704));
        // Every split holds whole steps and at least one value; the splits cover k.
        for grid in 1..140 {
            for k in (256..=8192).step_by(256) {
                if let Some(s) = split_shape(grid, k, 64, SPLIT_K_GRID) {
                    assert!(s.kc % 64 == 0 && s.ks >= 2, "{grid} {k} {s:?}");
                    assert!(
                        (s.ks - 1) * s.kc < k && s.ks * s.kc >= k,
                        "{grid} {k} {s:?}"
                    );
                    assert!(grid * s.ks <= 2 * SPLIT_K_TARGET, "{grid} {k} {s:?}");
                }
            }
        }
    }
}
