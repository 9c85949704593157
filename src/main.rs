//! The `vkgraph` command-line tool; see `vkgraph --help` and DESIGN.md's CLI contract.

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = vkgraph::cli::main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
