//! TODO(skeleton): module `graph`, see docs/ARCHITECTURE.md.
