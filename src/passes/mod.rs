//! TODO(skeleton): module `passes`, see docs/ARCHITECTURE.md.
