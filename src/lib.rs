//! vkgraph: run quantized GGUF language models on any Vulkan GPU.
//!
//! Data flow (see docs/ARCHITECTURE.md): [`gguf`] maps a file, [`model`] builds a
//! [`graph::Graph`] for a batch of tokens, [`passes`] fuse or reorder sibling
//! matmuls and plan barriers, [`sched`] assigns nodes to backends, and
//! [`backend`] (Vulkan, or the CPU reference) evaluates it.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod bench;
pub mod cli;
pub mod error;
pub mod gguf;
pub mod graph;
pub mod kv;
pub mod model;
pub mod ops;
pub mod options;
pub mod passes;
pub mod quant;
pub mod sample;
pub mod sched;
pub mod serve;
pub mod testops;
pub mod tokenizer;

pub use error::{Error, Result};
