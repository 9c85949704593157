//! GGUF parser and the opened-file type [`GgufFile`].
//!
//! Invariants after a successful parse (so users never re-check them):
//! - metadata keys and tensor names are unique (O(1) lookups through indexes);
//! - `alignment` is a nonzero power of two and `data_offset` is aligned to it;
//! - every tensor has 1..=4 nonzero dims, a supported type, a row length that is a
//!   multiple of the type's block size, an aligned offset, and its data
//!   `[data_offset + offset, + nbytes)` lies inside the file.
//!
//! Malformed input never panics or allocates more than the file could describe:
//! every count is bounded by `remaining bytes / smallest encoding of one element`
//! before a `Vec` is reserved, and array nesting depth is limited.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::value::{Array, Value, ValueType};
use super::{DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS};
use crate::quant::{ggml_type_name, GgmlType};
use crate::{Error, Result};

/// Smallest possible metadata entry: empty key (8) + type (4) + a 1-byte value.
const MIN_KV_SIZE: usize = 13;
/// Smallest possible tensor info: empty name (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
const MIN_TENSOR_INFO_SIZE: usize = 32;

/// Where one tensor's data lies and how it is shaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub ty: GgmlType,
    /// ggml order: `ne[0]` is the row length (contiguous), `ne[1]` the row count, ...
    pub ne: Vec<u64>,
    /// Byte offset relative to the data section (`GgufFile::data_offset`).
    pub offset: u64,
    /// Bytes of data.
    pub nbytes: u64,
}

impl TensorInfo {
    /// Number of elements (product of `ne`).
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }

    /// Number of rows (product of `ne[1..]`).
    pub fn n_rows(&self) -> u64 {
        self.ne.iter().skip(1).product()
    }
}

/// The bytes behind a file: a read-only mapping, or memory handed in by tests.
enum Backing {
    Mmap(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn as_slice(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file. Tensor data stays in the mapping; [`GgufFile::tensor_data`]
/// hands out zero-copy slices.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub alignment: u64,
    /// Absolute file offset of the tensor data section.
    pub data_offset: u64,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    bytes: Backing,
    key_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("n_metadata", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .field("file_size", &self.bytes.as_slice().len())
            .finish()
    }
}

impl GgufFile {
    /// Maps and parses a file (zero-copy: tensor data is never read here).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the mapping is read-only and private to this value. Like llama.cpp we
        // assume a model file is not truncated or rewritten by another process while it
        // is mapped; that is the documented contract of `vkgraph` for model files.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::parse(path.to_path_buf(), Backing::Mmap(map))
    }

    /// Parses a file held in memory; `name` stands in for the path in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        Self::parse(PathBuf::from(name), Backing::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Backing) -> Result<Self> {
        let name = path.display().to_string();
        let parsed = Parser::new(bytes.as_slice(), &name).file()?;
        let key_index = (parsed.metadata.iter().enumerate())
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        let tensor_index = (parsed.tensors.iter().enumerate())
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            path,
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            bytes,
            key_index,
            tensor_index,
        })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A tensor's info.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The data of a tensor of this file (zero-copy). Ranges were checked at open;
    /// an info that does not belong to this file yields an empty slice, not a panic.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let range = || -> Option<std::ops::Range<usize>> {
            let start = self.data_offset.checked_add(t.offset)?;
            let end = start.checked_add(t.nbytes)?;
            Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
        };
        range()
            .and_then(|r| self.bytes().get(r))
            .unwrap_or_default()
    }

    /// `general.architecture`.
    pub fn arch(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    /// `{arch}.{suffix}`, e.g. `arch_key("block_count")` → `llama.block_count`.
    pub fn arch_key(&self, suffix: &str) -> Result<String> {
        Ok(format!("{}.{suffix}", self.arch()?))
    }

    fn required(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| Error::Metadata {
            key: key.to_string(),
            what: "missing".to_string(),
        })
    }

    /// Required unsigned integer (any integer type whose value fits u32).
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self.required(key)?;
        let n = v
            .as_u64()
            .ok_or_else(|| wrong_type(key, "an unsigned integer", v))?;
        u32::try_from(n).map_err(|_| Error::Metadata {
            key: key.to_string(),
            what: format!("value {n} does not fit u32"),
        })
    }

    /// Required non-negative integer of any integer type.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.required(key)?;
        v.as_u64()
            .ok_or_else(|| wrong_type(key, "an unsigned integer", v))
    }

    /// Required integer of any integer type that fits i64.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        let v = self.required(key)?;
        v.as_i64().ok_or_else(|| wrong_type(key, "an integer", v))
    }

    /// Required number (float or integer) as f32.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.required(key)?;
        v.as_f32().ok_or_else(|| wrong_type(key, "a number", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.required(key)?;
        v.as_bool().ok_or_else(|| wrong_type(key, "a bool", v))
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.required(key)?;
        v.as_str().ok_or_else(|| wrong_type(key, "a string", v))
    }

    /// Required string array (e.g. `tokenizer.ggml.tokens`), borrowed.
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        let v = self.required(key)?;
        v.as_str_array()
            .ok_or_else(|| wrong_type(key, "a string array", v))
    }

    /// Required numeric array converted to f32.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>> {
        let v = self.required(key)?;
        v.as_f32_array()
            .ok_or_else(|| wrong_type(key, "a numeric array", v))
    }

    /// Required integer array whose values fit i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        let v = self.required(key)?;
        v.as_i32_array()
            .ok_or_else(|| wrong_type(key, "an integer array with i32 values", v))
    }

    pub fn get_u32_or(&self, key: &str, default: u32) -> Result<u32> {
        self.or(key, default, Self::get_u32)
    }

    pub fn get_u64_or(&self, key: &str, default: u64) -> Result<u64> {
        self.or(key, default, Self::get_u64)
    }

    pub fn get_i64_or(&self, key: &str, default: i64) -> Result<i64> {
        self.or(key, default, Self::get_i64)
    }

    pub fn get_f32_or(&self, key: &str, default: f32) -> Result<f32> {
        self.or(key, default, Self::get_f32)
    }

    pub fn get_bool_or(&self, key: &str, default: bool) -> Result<bool> {
        self.or(key, default, Self::get_bool)
    }

    pub fn get_str_or<'a>(&'a self, key: &str, default: &'a str) -> Result<&'a str> {
        match self.get(key) {
            None => Ok(default),
            Some(_) => self.get_str(key),
        }
    }

    /// Missing → `default`; present with the wrong type → error.
    fn or<T>(&self, key: &str, default: T, get: impl Fn(&Self, &str) -> Result<T>) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(_) => get(self, key),
        }
    }
}

fn wrong_type(key: &str, expected: &str, v: &Value) -> Error {
    let shown = match v {
        Value::Array(a) => format!("{} of {}", a.type_desc(), a.len()),
        Value::Str(s) => format!("str {:?}", s.chars().take(40).collect::<String>()),
        v => format!("{} {v:?}", v.type_desc()),
    };
    Error::Metadata {
        key: key.to_string(),
        what: format!("expected {expected}, found {shown}"),
    }
}

/// What the parser extracts; the file type adds the backing and indexes.
struct Parsed {
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
}

/// A bounds-checked little-endian cursor whose errors carry the file name and offset.
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    name: &'a str,
    lossy_strings: usize,
}

impl<'a> Parser<'a> {
    fn new(buf: &'a [u8], name: &'a str) -> Self {
        Parser {
            buf,
            pos: 0,
            name,
            lossy_strings: 0,
        }
    }

    fn err(&self, offset: usize, what: impl Into<String>) -> Error {
        Error::Gguf {
            path: self.name.to_string(),
            offset: offset as u64,
            what: what.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(
                self.pos,
                format!(
                    "truncated file: {what} needs {n} bytes, only {} left",
                    self.remaining()
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a u64 element count and checks that `count` elements of at least
    /// `min_size` bytes each fit in the rest of the file, before anyone allocates.
    fn count(&mut self, min_size: usize, what: &str) -> Result<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let max = self.remaining() / min_size.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(self.err(
                at,
                format!(
                    "{what} {n} exceeds what the remaining {} bytes can hold",
                    self.remaining()
                ),
            )),
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.count(1, what)?;
        let bytes = self.take(len, what)?;
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                // Not valid UTF-8: keep the file usable, replace the bad bytes.
                self.lossy_strings += 1;
                String::from_utf8_lossy(bytes).into_owned()
            }
        })
    }

    fn file(mut self) -> Result<Parsed> {
        let magic = self.array::<4>("magic")?;
        if &magic != MAGIC {
            return Err(self.err(0, format!("bad magic {magic:02x?}, expected \"GGUF\"")));
        }
        let version = self.u32("version")?;
        match version {
            2 | 3 => {}
            1 => {
                return Err(self.err(
                    4,
                    "unsupported version 1 (GGUF v1 is obsolete; re-convert the model)",
                ))
            }
            v if matches!(v.swap_bytes(), 2 | 3) => {
                return Err(self.err(
                    4,
                    format!("unsupported version {v:#x}: a big-endian GGUF file"),
                ))
            }
            v => return Err(self.err(4, format!("unknown version {v}"))),
        }
        let counts_at = self.pos;
        let n_tensors = self.u64("tensor count")?;
        let n_kv = self.u64("metadata count")?;
        // Both tables must fit in the rest of the file; checked in u128 so huge counts
        // cannot overflow, before reserving anything.
        let need = u128::from(n_tensors) * MIN_TENSOR_INFO_SIZE as u128
            + u128::from(n_kv) * MIN_KV_SIZE as u128;
        if need > self.remaining() as u128 {
            return Err(self.err(
                counts_at,
                format!(
                    "tensor count {n_tensors} and metadata count {n_kv} exceed what the \
                     remaining {} bytes can hold",
                    self.remaining()
                ),
            ));
        }
        // Both fit usize now: each is at most the file length.
        let (n_tensors, n_kv) = (n_tensors as usize, n_kv as usize);

        let mut metadata = Vec::with_capacity(n_kv);
        let mut key_at = HashMap::with_capacity(n_kv);
        for _ in 0..n_kv {
            let at = self.pos;
            let key = self.string("metadata key")?;
            if key_at.contains_key(&key) {
                return Err(self.err(at, format!("duplicate metadata key `{key}`")));
            }
            let value = self
                .kv_value()
                .map_err(|e| prefix(e, &format!("metadata `{key}`")))?;
            key_at.insert(key.clone(), (at, metadata.len()));
            metadata.push((key, value));
        }

        let alignment = match key_at.get(KEY_ALIGNMENT) {
            None => DEFAULT_ALIGNMENT,
            Some(&(at, i)) => {
                let v: &Value = &metadata[i].1;
                match v.as_u64() {
                    Some(a) if a.is_power_of_two() && a <= u64::from(u32::MAX) => a,
                    _ => {
                        return Err(self.err(
                            at,
                            format!(
                            "{KEY_ALIGNMENT} must be a nonzero power of two (u32), found {} {v:?}",
                            v.type_desc()
                        ),
                        ))
                    }
                }
            }
        };

        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors);
        let mut info_at = Vec::with_capacity(n_tensors);
        let mut seen = HashMap::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let at = self.pos;
            let t = self.tensor_info(alignment)?;
            if seen.insert(t.name.clone(), ()).is_some() {
                return Err(self.err(at, format!("duplicate tensor name `{}`", t.name)));
            }
            info_at.push(at);
            tensors.push(t);
        }

        let data_offset = (self.pos as u64)
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| self.err(self.pos, "data section offset overflows"))?;
        let file_len = self.buf.len() as u64;
        for (t, &at) in tensors.iter().zip(&info_at) {
            let end = (data_offset.checked_add(t.offset)).and_then(|s| s.checked_add(t.nbytes));
            if end.is_none_or(|e| e > file_len) {
                return Err(self.err(
                    at,
                    format!(
                        "tensor `{}`: data at offset {} + {} bytes (section starts at {data_offset}) \
                         is out of range of the file ({file_len} bytes)",
                        t.name, t.offset, t.nbytes
                    ),
                ));
            }
        }
        if self.lossy_strings > 0 {
            log::warn!(
                "{}: {} strings were not valid UTF-8; invalid bytes replaced by U+FFFD",
                self.name,
                self.lossy_strings
            );
        }
        Ok(Parsed {
            version,
            alignment,
            data_offset,
            metadata,
            tensors,
        })
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType> {
        let at = self.pos;
        let id = self.u32(what)?;
        ValueType::from_id(id).ok_or_else(|| self.err(at, format!("unknown {what} {id}")))
    }

    fn kv_value(&mut self) -> Result<Value> {
        let ty = self.value_type("value type")?;
        self.value(ty)
    }

    fn value(&mut self, ty: ValueType) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array("u8 value")?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array("i8 value")?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array("u16 value")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array("i16 value")?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array("u32 value")?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array("i32 value")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array("f32 value")?)),
            ValueType::Bool => Value::Bool(self.array::<1>("bool value")?[0] != 0),
            ValueType::Str => Value::Str(self.string("string length")?),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array("u64 value")?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array("i64 value")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array("f64 value")?)),
            ValueType::Array => Value::Array(self.array_value(1)?),
        })
    }

    /// An array payload: element type, count, elements. `depth` counts nesting.
    fn array_value(&mut self, depth: usize) -> Result<Array> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(self.err(
                self.pos,
                format!("arrays nested deeper than {MAX_ARRAY_DEPTH} levels"),
            ));
        }
        let ty = self.value_type("array element type")?;
        let n = self.count(ty.min_size(), "array length")?;
        // Fixed-size elements: one bounds check, then decode in bulk.
        macro_rules! bulk {
            ($var:ident, $t:ty) => {{
                const S: usize = std::mem::size_of::<$t>();
                let raw = self.take(n * S, "array data")?;
                let v = raw.chunks_exact(S).map(|c| {
                    let mut a = [0u8; S];
                    a.copy_from_slice(c);
                    <$t>::from_le_bytes(a)
                });
                Array::$var(v.collect())
            }};
        }
        Ok(match ty {
            ValueType::U8 => Array::U8(self.take(n, "array data")?.to_vec()),
            ValueType::I8 => bulk!(I8, i8),
            ValueType::U16 => bulk!(U16, u16),
            ValueType::I16 => bulk!(I16, i16),
            ValueType::U32 => bulk!(U32, u32),
            ValueType::I32 => bulk!(I32, i32),
            ValueType::F32 => bulk!(F32, f32),
            ValueType::U64 => bulk!(U64, u64),
            ValueType::I64 => bulk!(I64, i64),
            ValueType::F64 => bulk!(F64, f64),
            ValueType::Bool => Array::Bool(
                self.take(n, "array data")?
                    .iter()
                    .map(|&b| b != 0)
                    .collect(),
            ),
            ValueType::Str => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string("string length")?);
                }
                Array::Str(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.array_value(depth + 1)?);
                }
                Array::Nested(v)
            }
        })
    }

    fn tensor_info(&mut self, alignment: u64) -> Result<TensorInfo> {
        let name = self.string("tensor name")?;
        let bad = |p: &Self, at: usize, what: String| p.err(at, format!("tensor `{name}`: {what}"));
        let at = self.pos;
        let n_dims = self.u32("tensor n_dims")?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(bad(
                self,
                at,
                format!("n_dims {n_dims} not in 1..={MAX_DIMS}"),
            ));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        let mut n_elements: u64 = 1;
        for i in 0..n_dims {
            let at = self.pos;
            let d = self.u64("tensor dim")?;
            // llama.cpp stores dims as int64: anything above i64::MAX is negative there.
            if d == 0 || d > i64::MAX as u64 {
                return Err(bad(self, at, format!("dim ne[{i}] = {d} is invalid")));
            }
            n_elements = match n_elements.checked_mul(d) {
                Some(n) if n <= i64::MAX as u64 => n,
                _ => {
                    return Err(bad(
                        self,
                        at,
                        format!("element count overflows at ne[{i}] = {d}"),
                    ))
                }
            };
            ne.push(d);
        }
        let at = self.pos;
        let id = self.u32("tensor type")?;
        let ty = GgmlType::from_id(id).map_err(|_| {
            bad(
                self,
                at,
                format!("unsupported ggml type id {id} ({})", ggml_type_name(id)),
            )
        })?;
        let row = usize::try_from(ne[0]).ok().and_then(|n| ty.row_bytes(n));
        let nbytes = row
            .and_then(|r| (r as u64).checked_mul(n_elements / ne[0]))
            .ok_or_else(|| {
                bad(
                    self,
                    at,
                    format!(
                        "row length ne[0] = {} is not a multiple of the {ty} block size {} (or too large)",
                        ne[0],
                        ty.block_size()
                    ),
                )
            })?;
        let at = self.pos;
        let offset = self.u64("tensor offset")?;
        if offset % alignment != 0 {
            return Err(bad(
                self,
                at,
                format!("data offset {offset} is not a multiple of the alignment {alignment}"),
            ));
        }
        Ok(TensorInfo {
            name,
            ty,
            ne,
            offset,
            nbytes,
        })
    }
}

/// Prepends context (`metadata `key``) to a GGUF error's message.
fn prefix(e: Error, context: &str) -> Error {
    match e {
        Error::Gguf { path, offset, what } => Error::Gguf {
            path,
            offset,
            what: format!("{context}: {what}"),
        },
        e => e,
    }
}
