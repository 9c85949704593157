//! TODO(skeleton): module `tokenizer`, see docs/ARCHITECTURE.md.
