//! The `gridstore` binary: parse arguments, run, map errors to exit codes.

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = gridstore::cli::Cli::parse();
    gridstore::gdal_io::silence_gdal_messages();
    match gridstore::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
