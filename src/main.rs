//! The `dnsd` executable: parse the arguments, start logging, run, map the error to an
//! exit code. Everything else is in the library.

use clap::Parser;

fn main() {
    let cli = dnsd::cli::Cli::parse();
    dnsd::ops::diagnostics::init();
    let result = cli.run();
    dnsd::ops::diagnostics::flush();
    if let Err(err) = result {
        eprintln!("{}", err.report());
        std::process::exit(err.exit_code());
    }
}
