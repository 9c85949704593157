//! Quantization formats: the type table ([`GgmlType`]) and CPU reference
//! dequantization / quantization for every supported type, with ggml's block layouts.

mod types;

pub use types::{ggml_type_name, GgmlType};
