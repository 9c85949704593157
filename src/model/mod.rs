//! TODO(skeleton): module `model`, see docs/ARCHITECTURE.md.
