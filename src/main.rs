//! The `dnsd` executable: parse the arguments, start logging, run, print the error and
//! exit with its code. Everything else is in the library.

use clap::Parser;

fn main() {
    let cli = dnsd::cli::Cli::parse();
    let settings = cli.diagnostics();
    if let Err(e) = dnsd::ops::diagnostics::init_with(&settings) {
        let file = settings.log_file.unwrap_or_default();
        eprintln!("error: --log-file {}: {e}", file.display());
        std::process::exit(1);
    }
    let result = dnsd::runtime::run(cli);
    dnsd::ops::diagnostics::flush();
    if let Err(err) = result {
        eprintln!("{}", err.report());
        std::process::exit(err.exit_code());
    }
}
