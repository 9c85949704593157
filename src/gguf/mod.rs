//! TODO(skeleton): module `gguf`, see docs/ARCHITECTURE.md.
