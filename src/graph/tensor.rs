//! Tensors of the graph IR: element type, shape (ggml order, `ne[0]` innermost) and
//! where the bytes live. Tensors are always contiguous; a view is a byte offset into
//! another tensor's storage with its own shape.

use crate::quant::GgmlType;

/// Index of a tensor in [`super::Graph::tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub u32);

impl TensorId {
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

/// Where a tensor's bytes live.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorKind {
    /// Uploaded by the caller for each pass (token ids, positions).
    Input,
    /// A model weight: a GGUF tensor by name.
    Weight { name: String },
    /// Weights of several GGUF tensors placed back to back (same type, same row
    /// length) at load time; `members` in order. The file is not changed.
    FusedWeight { members: Vec<String> },
    /// Weights of several GGUF tensors of *different* types placed back to back at load
    /// time (the grouped mat-vec, DESIGN.md decision 14): member `s` is `rows[s]` rows of
    /// `ne[0]` values of `types[s]`. The tensor's own `ty` is `types[0]`; [`Tensor::nbytes`]
    /// sums the members. The file is not changed.
    GroupedWeight {
        members: Vec<String>,
        types: Vec<GgmlType>,
        rows: Vec<usize>,
    },
    /// An intermediate result, placed by the backend's memory planner.
    Activation,
    /// Persistent state that outlives one pass (the KV cache), by name.
    State { name: String },
    /// `nbytes` of another tensor's storage starting at byte `offset`.
    View { base: TensorId, offset: usize },
}

/// One tensor of a graph.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub ty: GgmlType,
    /// Shape, ggml order: `ne[0]` is the row length (contiguous), then rows, ...
    pub ne: [usize; 4],
    pub kind: TensorKind,
}

impl Tensor {
    /// Number of rows (`ne[1] * ne[2] * ne[3]`).
    pub fn nrows(&self) -> usize {
        self.ne[1] * self.ne[2] * self.ne[3]
    }

    /// Number of elements.
    pub fn nelements(&self) -> usize {
        self.ne.iter().product()
    }

    /// Bytes of one row (of the first member, for a grouped weight).
    pub fn row_bytes(&self) -> usize {
        self.ty
            .row_bytes(self.ne[0])
            .expect("graph tensors have whole blocks per row (checked when built)")
    }

    /// Bytes of the whole tensor.
    pub fn nbytes(&self) -> usize {
        match &self.kind {
            TensorKind::GroupedWeight { types, rows, .. } => types
                .iter()
                .zip(rows)
                .map(|(t, r)| {
                    t.row_bytes(self.ne[0])
                        .expect("grouped members have whole blocks per row (checked when built)")
                        * r
                })
                .sum(),
            _ => self.row_bytes() * self.nrows(),
        }
    }

    /// A MUL_MAT weight's segments as (type, rows): a grouped weight's members, else one
    /// segment of the tensor's type (a fused weight's members share it).
    pub fn weight_types(&self) -> Vec<(GgmlType, usize)> {
        match &self.kind {
            TensorKind::GroupedWeight { types, rows, .. } => {
                types.iter().copied().zip(rows.iter().copied()).collect()
            }
            _ => vec![(self.ty, self.nrows())],
        }
    }

    /// The type for display: `q2_K` or, for a grouped weight, `q2_K+q3_K`.
    pub fn type_str(&self) -> String {
        match &self.kind {
            TensorKind::GroupedWeight { types, .. } => {
                let mut seen: Vec<GgmlType> = Vec::new();
                for t in types {
                    if !seen.contains(t) {
                        seen.push(*t);
                    }
                }
                let names: Vec<&str> = seen.iter().map(|t| t.name()).collect();
                names.join("+")
            }
            _ => self.ty.name().to_string(),
        }
    }

    /// `ne` without trailing 1s, for display: `[256, 4]`.
    pub fn shape_str(&self) -> String {
        let mut n = 4;
        while n > 1 && self.ne[n - 1] == 1 {
            n -= 1;
        }
        let dims: Vec<String> = self.ne[..n].iter().map(|d| d.to_string()).collect();
        format!("[{}]", dims.join(", "))
    }
}
