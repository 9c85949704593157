//! The `vkgraph` command-line tool; see `vkgraph --help` and DESIGN.md's CLI contract.

fn main() {
    // Like other Unix tools, end quietly when stdout is a closed pipe (`vkgraph dump |
    // head`) instead of letting `println!` panic on EPIPE.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = vkgraph::cli::main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
