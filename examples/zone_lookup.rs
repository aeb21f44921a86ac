//! dnsd as a library, without any network: load a zone file (legacy or TOML, chosen by
//! its extension) and look names up the way a TLD server does.
//!
//!     cargo run --example zone_lookup -- zones/com.dat google.com www.github.com nosuch.com

use std::path::PathBuf;

use dnsd::model::name::Name;
use dnsd::zone::Zone;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("zones/com.toml"),
        PathBuf::from,
    );
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = [
            "www.google.com",
            "Google.COM.",
            "mail.google.com",
            "bad name",
        ]
        .map(String::from)
        .to_vec();
    }

    // A bad file is an error that names the file and the line: `FILE:LINE: what`.
    let zone = match Zone::load(&path) {
        Ok(zone) => zone,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!("{}: {} records", path.display(), zone.len());

    for name in &names {
        // Names are validated and normalised (lower case, no trailing dot) first.
        match Name::parse(name) {
            // `lookup` applies the original's rule: no record of its own, try `www.` + name.
            Ok(parsed) => match zone.lookup(&parsed) {
                Some(addr) => println!("{name:<20} {addr}"),
                None => println!("{name:<20} not found"),
            },
            Err(e) => println!("{name:<20} invalid: {e}"),
        }
    }
}
