//! Decode tuning of the Vulkan executor: the overrides behind the `VKGRAPH_MMV*` and
//! `VKGRAPH_ATTN_*` knobs (options.rs; A/B and tuning, each re-planning what it changes)
//! and the split-K decode attention's shape at the planned length with those overrides
//! applied — the one place the scratch plan, the recording and the dump take it from.

use super::VulkanBackend;
use crate::backend::vulkan::dispatch;

impl VulkanBackend {
    /// Overrides the decode mat-vec launch shape (tuning; `None`: chosen per shape).
    pub fn set_mat_vec_shape(&mut self, shape: Option<dispatch::mul_mat::MatVecShape>) {
        if shape != self.mat_vec_shape {
            self.mat_vec_shape = shape;
            self.recorded.clear();
        }
    }

    /// Overrides the expert-indexed integer-dot mat-vec's launch shape (tuning; `None`:
    /// [`Self::set_mat_vecq_shape`]'s).
    pub fn set_mat_vecq_id_shape(&mut self, shape: Option<dispatch::mul_mat::MatVecShape>) {
        if shape != self.mat_vecq_id_shape {
            self.mat_vecq_id_shape = shape;
            self.recorded.clear();
        }
    }

    /// The launch shape override of the expert-indexed integer-dot mat-vec.
    pub(super) fn id_vecq_shape(&self) -> Option<dispatch::mul_mat::MatVecShape> {
        self.mat_vecq_id_shape.or(self.mat_vecq_shape)
    }

    /// Overrides the integer-dot mat-vec's launch shape (tuning; `None`: chosen per shape).
    pub fn set_mat_vecq_shape(&mut self, shape: Option<dispatch::mul_mat::MatVecShape>) {
        if shape != self.mat_vecq_shape {
            self.mat_vecq_shape = shape;
            self.arena_uid = 0; // re-plan the q8_1 slots (who can write them depends on it)
            self.recorded.clear();
        }
    }

    /// Overrides the cache rows per split-K attention workgroup (tuning; `None`: the
    /// default, `dispatch::attention::ROWS_PER_SPLIT`). Takes effect at the next plan.
    pub fn set_attn_split_rows(&mut self, rows: Option<u32>) {
        if rows != self.attn_split_rows {
            self.attn_split_rows = rows;
            self.arena_uid = 0; // re-plan the split shapes
            self.recorded.clear();
        }
    }

    /// Overrides the planned cache rows from which decode attention splits the context
    /// (tuning; `None`: the default, `dispatch::attention::MIN_SPLIT_ROWS`). Takes effect
    /// at the next plan.
    pub fn set_attn_min_split(&mut self, rows: Option<u32>) {
        if rows != self.attn_min_split {
            self.attn_min_split = rows;
            self.arena_uid = 0; // re-plan the split shapes
            self.recorded.clear();
        }
    }

    /// Overrides whether split-K decode attention preloads each tile's V rows (`VPRE`;
    /// tuning; `None`: the default of `dispatch::attention::split_shape`). Takes effect at
    /// the next plan.
    pub fn set_attn_split_vpre(&mut self, on: Option<bool>) {
        if on != self.attn_split_vpre {
            self.attn_split_vpre = on;
            self.arena_uid = 0; // re-plan the split shapes
            self.recorded.clear();
        }
    }

    /// Caps the query heads per split-K decode attention workgroup (`qb`; tuning; `None`:
    /// the choice of `dispatch::attention::split_shape`, which a cap can only lower — a
    /// power of two below it still divides the GQA group and fits the shared memory).
    /// Takes effect at the next plan.
    pub fn set_attn_split_qb(&mut self, qb: Option<u32>) {
        if qb != self.attn_split_qb {
            self.attn_split_qb = qb;
            self.arena_uid = 0; // re-plan the split shapes and their scratch
            self.recorded.clear();
        }
    }

    /// The cache length decode attention is planned for: the current length rounded up
    /// to a power of two (at least 256), at most the cache's `n_kv` rows. Short contexts
    /// get few splits (or none) and narrow workgroups, so decode does not pay for the
    /// whole cache's grid; `compute` plans again when the context outgrows it.
    pub(super) fn split_rows_for(&self, n_kv: u32) -> u32 {
        self.kv_len.max(1).next_power_of_two().max(256).min(n_kv)
    }

    /// The split-K shape of a decode attention node of dims `[d, n_head, n_head_kv, n,
    /// n_kv]` at the planned length, with the tuning overrides (`VKGRAPH_ATTN_*`) applied;
    /// `None`: unsplit. What the scratch plan records and the dump describes.
    pub(super) fn attention_split_shape(
        &self,
        [d, nh, nkv, nt, n_kv]: [u32; 5],
    ) -> Option<dispatch::attention::SplitShape> {
        let shape = dispatch::attention::split_shape(
            self.ctx.caps(),
            d,
            nh,
            nkv,
            nt,
            self.split_rows_for(n_kv),
            self.force_attention_split,
            self.attn_min_split
                .unwrap_or(dispatch::attention::MIN_SPLIT_ROWS),
            self.split_rows_per_workgroup(),
        )?;
        let qb = match self.attn_split_qb {
            Some(cap) if cap.is_power_of_two() => shape.qb.min(cap),
            _ => shape.qb,
        };
        Some(dispatch::attention::SplitShape {
            preload_v: self.attn_split_vpre.unwrap_or(shape.preload_v),
            qb,
            ..shape
        })
    }

    /// Cache rows per split-K workgroup: the override, else the default.
    pub(super) fn split_rows_per_workgroup(&self) -> u32 {
        self.attn_split_rows
            .unwrap_or(dispatch::attention::ROWS_PER_SPLIT)
    }
}
