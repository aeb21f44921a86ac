//! The `dnsd` executable: parse the arguments, start logging, run, print the error and
//! exit with its code. Everything else is in the library.

use clap::Parser;

fn main() {
    let cli = dnsd::cli::Cli::parse();
    dnsd::ops::diagnostics::init();
    let result = dnsd::runtime::run(cli);
    dnsd::ops::diagnostics::flush();
    if let Err(err) = result {
        eprintln!("{}", err.report());
        std::process::exit(err.exit_code());
    }
}
