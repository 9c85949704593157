//! The crate's one error type. Variants are grouped by where the problem lies
//! (input file, unsupported feature, device, usage) and every message names the
//! file, tensor or feature involved so a user can act on it without a debugger.

use std::path::PathBuf;

/// Everything that can go wrong in vkgraph.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- input files -------------------------------------------------------
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A GGUF file is malformed; `what` says how, `offset` where.
    #[error("malformed GGUF {path}: {what} (at byte {offset})")]
    Gguf {
        path: String,
        offset: u64,
        what: String,
    },
    /// A tensor the model needs is missing or has the wrong shape/type.
    #[error("tensor `{tensor}`: {what}")]
    Tensor { tensor: String, what: String },
    /// A metadata key is missing or has the wrong type.
    #[error("metadata `{key}`: {what}")]
    Metadata { key: String, what: String },

    // ---- unsupported -------------------------------------------------------
    #[error("unsupported: {0}")]
    Unsupported(String),

    // ---- devices -----------------------------------------------------------
    #[error("Vulkan: {0}")]
    Vulkan(String),
    #[error("out of device memory: {0}")]
    OutOfDeviceMemory(String),
    /// `VK_ERROR_DEVICE_LOST`: the driver reset the device (a fault or a hang it caught);
    /// nothing on that device can be used afterwards.
    #[error("device lost: {0}")]
    DeviceLost(String),
    /// A submission's fence was not signalled within the fence timeout
    /// (`VKGRAPH_FENCE_TIMEOUT`): a kernel that does not end, or a hung driver. The work may
    /// still be running; the device should not be used for anything else.
    #[error("device timeout: {0}")]
    Timeout(String),

    // ---- usage -------------------------------------------------------------
    #[error("{0}")]
    Usage(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("context full: {0}")]
    ContextFull(String),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
