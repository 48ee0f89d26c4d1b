//! The `gridstore` binary: parse arguments, run, map errors to exit codes.

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    restore_sigpipe();
    // Help, version and usage errors are clap's, whole: what is missing or
    // misspelt ("did you mean"), the usage line, exit code 2.
    let cli =
        gridstore::cli::Cli::parse_from(gridstore::cli::with_store_shorthand(std::env::args_os()));
    gridstore::gdal_io::silence_gdal_messages();
    gridstore::storage::hdf5::quiet_thread();
    rayon::ThreadPoolBuilder::new()
        .start_handler(|_| gridstore::storage::hdf5::quiet_thread())
        .build_global()
        .ok();
    match gridstore::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Lets a closed pipe end the process quietly (`gridstore info S | head`),
/// as it does other command-line tools, instead of a failed print.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first in main, before any other thread exists; it
    // only resets one signal's disposition to the system default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
