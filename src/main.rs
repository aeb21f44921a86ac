//! The `dnsd` executable: parse the arguments, start logging, run, map the error to an
//! exit code. Everything else is in the library.

use clap::Parser;

fn main() {
    let cli = dnsd::cli::Cli::parse();
    dnsd::logging::init();
    let result = cli.run();
    dnsd::logging::flush();
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(err.exit_code());
    }
}
