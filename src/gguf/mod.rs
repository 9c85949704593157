//! GGUF files: a zero-copy reader ([`GgufFile`], memmap2) and a streaming v3
//! writer ([`GgufWriter`]).
//!
//! Format (little-endian; versions 2 and 3 share this layout, v1 is rejected):
//! `"GGUF"`, u32 version, u64 tensor count, u64 metadata count; metadata entries
//! (string key, u32 value type, value); tensor infos (string name, u32 n_dims,
//! n_dims × u64 ne, u32 ggml type, u64 offset into the data section); zero padding
//! to the alignment (`general.alignment`, default 32); the tensor data. Strings are
//! a u64 byte length and UTF-8 bytes; arrays are a u32 element type, a u64 count
//! and the elements (arrays of arrays repeat that layout per element).
//!
//! Every malformed input is an [`crate::Error::Gguf`] naming the problem and the
//! byte offset where it was found.

mod reader;
mod summary;
mod value;
mod writer;

pub use reader::{GgufFile, TensorInfo};
pub use value::{Array, Value, ValueType};
pub use writer::GgufWriter;

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides the alignment (u32).
pub const KEY_ALIGNMENT: &str = "general.alignment";
/// ggml tensors have at most 4 dims.
pub const MAX_DIMS: usize = 4;
/// Deepest array nesting the reader accepts (guards the stack against crafted files).
pub const MAX_ARRAY_DEPTH: usize = 16;
