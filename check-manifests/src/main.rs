//! `check-manifests`: see the library, and `check-manifests --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let options = check_manifests::cli::Args::parse().options();
    let code = check_manifests::check(
        &options,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}
