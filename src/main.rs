//! The `vkgraph` command-line tool.
fn main() {}
