//! The `microtask` command line: parse, call the library, print. Errors print as one line with
//! their cause chain; exit 1 on a runtime error, 2 on a usage error (clap's, or one the library
//! finds before any work, such as an output that would overwrite an input), 75 when SIGINT or
//! SIGTERM stopped a job after committing its work (rerun with `--resume`).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `microtask ... | head` should end quietly, as other command-line tools do, instead of
    // panicking on a closed stdout.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE action before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread starts: it sets an environment variable.
    cli::runtime_dir::ensure();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
