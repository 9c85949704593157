//! TODO(skeleton): module `sched`, see docs/ARCHITECTURE.md.
