//! GGUF v3 writer. Collects metadata and tensor shapes, then streams the file:
//! header, metadata, tensor infos, padding, and each tensor's data supplied by a
//! callback (so multi-GB models are never held in memory twice).
//!
//! Invariants of a written file: tensor offsets are laid out in `add_tensor` order,
//! each aligned to the alignment; the data section starts aligned; each tensor's
//! data is padded with zeros to the alignment; `general.alignment` is written
//! whenever an alignment was set. `write` goes through `<path>.tmp.<pid>.<n>` + rename, so a
//! failed write leaves no file (and no temp file) behind.

use std::io::Write;
use std::path::Path;

use super::value::{Array, Value};
use super::{TensorInfo, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, MAX_DIMS};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// Builds a GGUF v3 file.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    alignment: u64,
    metadata: Vec<(String, Value)>,
    /// Offsets are filled in by `layout`.
    tensors: Vec<TensorInfo>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter {
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the data alignment and records it as `general.alignment` (u32). Checked
    /// (nonzero power of two that fits u32) when writing.
    pub fn set_alignment(&mut self, a: u64) {
        self.alignment = a;
        let v = match u32::try_from(a) {
            Ok(a) => Value::U32(a),
            Err(_) => Value::U64(a),
        };
        self.upsert(KEY_ALIGNMENT, v);
    }

    /// The alignment the file will use.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Adds a metadata entry, replacing an earlier one with the same key (the file
    /// never holds duplicates). `general.alignment` also sets the alignment.
    pub fn add(&mut self, key: &str, v: impl Into<Value>) {
        let v = v.into();
        if key == KEY_ALIGNMENT {
            match v.as_u64() {
                // Stored as u32, the type llama.cpp requires.
                Some(a) => return self.set_alignment(a),
                // Not an integer: an alignment of 0, which `write` rejects.
                None => self.alignment = 0,
            }
        }
        self.upsert(key, v);
    }

    fn upsert(&mut self, key: &str, v: Value) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.metadata.push((key.to_string(), v)),
        }
    }

    /// Metadata added so far, in order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// Declares a tensor; its data is supplied later by `write`'s callback.
    /// Checks the name is new, 1..=4 nonzero dims, and that rows are whole blocks.
    pub fn add_tensor(&mut self, name: &str, ty: GgmlType, ne: &[u64]) -> Result<()> {
        let bad = |what: String| Error::Tensor {
            tensor: name.to_string(),
            what,
        };
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(bad("added twice".into()));
        }
        if ne.is_empty() || ne.len() > MAX_DIMS {
            return Err(bad(format!("{} dims, expected 1..={MAX_DIMS}", ne.len())));
        }
        if let Some(i) = ne.iter().position(|&d| d == 0 || d > i64::MAX as u64) {
            return Err(bad(format!("dim ne[{i}] = {} is invalid", ne[i])));
        }
        let n_rows = ne[1..].iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let row = usize::try_from(ne[0]).ok().and_then(|n| ty.row_bytes(n));
        let Some(row) = row else {
            return Err(bad(format!(
                "row length ne[0] = {} is not a multiple of the {ty} block size {}",
                ne[0],
                ty.block_size()
            )));
        };
        let n_elements = n_rows.and_then(|r| r.checked_mul(ne[0]));
        let nbytes = n_rows.and_then(|r| r.checked_mul(row as u64));
        let (Some(nbytes), Some(n)) = (nbytes, n_elements) else {
            return Err(bad(format!("shape {ne:?} overflows")));
        };
        if n > i64::MAX as u64 {
            return Err(bad(format!("shape {ne:?} overflows")));
        }
        self.tensors.push(TensorInfo {
            name: name.to_string(),
            ty,
            ne: ne.to_vec(),
            offset: 0,
            nbytes,
        });
        Ok(())
    }

    /// The tensor infos with the offsets the file will have.
    pub fn tensor_infos(&self) -> Result<Vec<TensorInfo>> {
        self.check_alignment()?;
        let mut off = 0u64;
        let mut out = self.tensors.clone();
        for t in &mut out {
            t.offset = off;
            off = (off.checked_add(t.nbytes))
                .and_then(|e| e.checked_next_multiple_of(self.alignment))
                .ok_or_else(|| Error::Tensor {
                    tensor: t.name.clone(),
                    what: "data section size overflows".into(),
                })?;
        }
        Ok(out)
    }

    fn check_alignment(&self) -> Result<()> {
        let a = self.alignment;
        if !a.is_power_of_two() || a > u64::from(u32::MAX) {
            return Err(Error::Metadata {
                key: KEY_ALIGNMENT.into(),
                what: format!("alignment {a} is not a nonzero power of two that fits u32"),
            });
        }
        Ok(())
    }

    /// Writes the file to `path` through a temporary `<path>.tmp.<pid>.<n>` and a rename. `data` is called
    /// once per tensor, in order, and must write exactly `nbytes` bytes.
    pub fn write(
        &self,
        path: &Path,
        data: impl FnMut(usize, &TensorInfo, &mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        // Unique per process and call, so concurrent writers of one path do not collide.
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}.{seq}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let result = (|| {
            let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            self.write_to(&mut w, path, data)?;
            let file = w
                .into_inner()
                .map_err(|e| Error::io(&tmp, e.into_error()))?;
            drop(file);
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The whole file in memory (tests, small files).
    pub fn to_bytes(
        &self,
        data: impl FnMut(usize, &TensorInfo, &mut dyn Write) -> Result<()>,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out, Path::new("<memory>"), data)?;
        Ok(out)
    }

    /// Streams the file into `w`; `path` names it in I/O errors.
    pub fn write_to(
        &self,
        w: &mut dyn Write,
        path: &Path,
        mut data: impl FnMut(usize, &TensorInfo, &mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let infos = self.tensor_infos()?;
        let io = |e: std::io::Error| Error::io(path, e);
        let mut w = Counting { inner: w, n: 0 };

        let mut head = Vec::new();
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(infos.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut head, k);
            head.extend_from_slice(&v.value_type().id().to_le_bytes());
            put_value(&mut head, v);
        }
        for t in &infos {
            put_str(&mut head, &t.name);
            head.extend_from_slice(&(t.ne.len() as u32).to_le_bytes());
            for d in &t.ne {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.ty.id().to_le_bytes());
            head.extend_from_slice(&t.offset.to_le_bytes());
        }
        w.write_all(&head).map_err(io)?;
        pad(&mut w, self.alignment).map_err(io)?;

        for (i, t) in infos.iter().enumerate() {
            let start = w.n;
            data(i, t, &mut w)?;
            let written = w.n - start;
            if written != t.nbytes {
                return Err(Error::Tensor {
                    tensor: t.name.clone(),
                    what: format!("data callback wrote {written} bytes, expected {}", t.nbytes),
                });
            }
            pad(&mut w, self.alignment).map_err(io)?;
        }
        w.flush().map_err(io)
    }
}

/// Counts bytes so the writer can check callbacks and compute padding.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn pad(w: &mut Counting<'_>, alignment: u64) -> std::io::Result<()> {
    let n = w.n.next_multiple_of(alignment) - w.n;
    const ZEROS: [u8; 256] = [0; 256];
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(ZEROS.len());
        w.write_all(&ZEROS[..k])?;
        left -= k;
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::Str(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => put_array(out, a),
    }
}

/// Element type, count, elements (the same layout at every nesting level).
fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&a.elem_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => le!(v),
        Array::U16(v) => le!(v),
        Array::I16(v) => le!(v),
        Array::U32(v) => le!(v),
        Array::I32(v) => le!(v),
        Array::F32(v) => le!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Array::Str(v) => v.iter().for_each(|s| put_str(out, s)),
        Array::U64(v) => le!(v),
        Array::I64(v) => le!(v),
        Array::F64(v) => le!(v),
        Array::Nested(v) => v.iter().for_each(|inner| put_array(out, inner)),
    }
}
