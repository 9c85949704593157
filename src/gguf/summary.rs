//! Human-readable summary of a GGUF file for `vkgraph info`: header facts, every
//! metadata entry on one line (long arrays abbreviated as `[150000 × str]`), and
//! tensor counts and bytes per type.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::value::{Array, Value};
use super::GgufFile;

/// Arrays up to this many elements are shown in full.
const MAX_SHOWN_ELEMS: usize = 8;
/// Strings are cut after this many characters.
const MAX_SHOWN_CHARS: usize = 64;

impl GgufFile {
    /// One line per metadata entry plus header and per-type tensor totals.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: GGUF v{}, {} bytes, alignment {}, data at byte {}",
            self.path.display(),
            self.version,
            self.bytes().len(),
            self.alignment,
            self.data_offset
        );
        let _ = writeln!(s, "metadata ({} entries):", self.metadata.len());
        for (k, v) in &self.metadata {
            let _ = writeln!(s, "  {k}: {}", show_value(v));
        }
        let mut by_type: BTreeMap<_, (usize, u64)> = BTreeMap::new();
        for t in &self.tensors {
            let e = by_type.entry(t.ty).or_default();
            e.0 += 1;
            e.1 += t.nbytes;
        }
        let total: u64 = self.tensors.iter().map(|t| t.nbytes).sum();
        let _ = writeln!(
            s,
            "tensors ({}, {}):",
            self.tensors.len(),
            human_bytes(total)
        );
        for (ty, (n, bytes)) in by_type {
            let _ = writeln!(s, "  {ty}: {n} tensors, {}", human_bytes(bytes));
        }
        s
    }
}

/// `u32 = 4096`, `str = "llama"`, `[i32] = [1, 2]`, `[150000 × str]`.
pub(crate) fn show_value(v: &Value) -> String {
    match v {
        Value::Array(a) => show_array(a),
        v => format!("{} = {}", v.type_desc(), show_scalar(v)),
    }
}

fn show_array(a: &Array) -> String {
    if a.len() > MAX_SHOWN_ELEMS {
        return match a {
            Array::Nested(_) => format!("[{} × {}]", a.len(), a.type_desc()),
            _ => format!("[{} × {}]", a.len(), a.elem_type()),
        };
    }
    let items: Vec<String> = (0..a.len())
        .filter_map(|i| a.get(i))
        .map(|v| match v {
            Value::Array(inner) => show_array(&inner),
            v => show_scalar(&v),
        })
        .collect();
    format!("{} = [{}]", a.type_desc(), items.join(", "))
}

fn show_scalar(v: &Value) -> String {
    match v {
        Value::Str(s) if s.chars().count() > MAX_SHOWN_CHARS => {
            let cut: String = s.chars().take(MAX_SHOWN_CHARS).collect();
            format!("{cut:?}… ({} bytes)", s.len())
        }
        Value::Str(s) => format!("{s:?}"),
        Value::U8(x) => x.to_string(),
        Value::I8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::F32(x) => x.to_string(),
        Value::Bool(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Array(a) => show_array(a),
    }
}

/// `812 B`, `3.50 MiB`, `4.07 GiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.2} {}", UNITS[u])
}
