//! `dnsd bench`: a closed-loop load generator (to be written).

use clap::Args;

use crate::error::Error;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The server to measure.
    #[arg(long, default_value = "127.0.0.1:5352", value_name = "HOST:PORT")]
    pub server: String,
}

pub fn run(_args: BenchArgs) -> Result<(), Error> {
    Err(Error::Runtime("dnsd bench is not written yet".into()))
}
