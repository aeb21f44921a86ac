//! dnsd as a library: start a whole hierarchy in this process, then resolve names
//! through it with [`dnsd::line::client::Client`], in both modes.
//!
//!     cargo run --example resolve
//!
//! Every server binds port 0 (any free port), so this runs beside a real `dnsd up`.

use std::path::Path;
use std::time::Duration;

use dnsd::line::client::Client;
use dnsd::line::message::Mode;
use dnsd::model::name::Name;
use dnsd::runtime::hierarchy::HierarchyBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    // The sample zones: a TLD server for each TLD of the root table, the root, and the
    // local server seeded with the default cache, its logs in a temporary directory.
    // `true`: any free port for each (the root's table then says where the TLD servers
    // really landed), so this runs beside a real `dnsd up`.
    let logs = tempfile::tempdir()?;
    let hierarchy = HierarchyBuilder::from_zones(Some(&zones), true)?
        .log_dir(logs.path())
        .start()?;
    for (tld, addr) in &hierarchy.tlds {
        println!("tld {tld:<4} on {addr}");
    }
    println!("root     on {}", hierarchy.root);
    println!("local    on {}\n", hierarchy.local);

    // A client: connect, send the id, then ask.
    let mut client = Client::connect(
        &hierarchy.local.to_string(),
        "example",
        Duration::from_secs(5),
    )?;
    for (name, mode) in [
        ("www.google.com", Mode::Recursive), // root asks com's server: 0X01
        ("nasa.gov", Mode::Iterative),       // root refers us to gov's server: 0X01
        ("google.com", Mode::Iterative),     // the www. rule, from the cache now: 0X00
        ("www.example.com", Mode::Recursive), // seeded in the default cache: 0X00
        ("nosuch.org", Mode::Recursive),     // 0XFF
    ] {
        let reply = client.query(&Name::parse(name)?, mode)?;
        // A reply is typed: its code, the server that gave it, and the address if any.
        println!(
            "{name:<16} {mode}  ->  {reply}   (address: {:?})",
            reply.ip()
        );
    }
    client.quit()?;

    println!(
        "\nexample.log:\n{}",
        std::fs::read_to_string(logs.path().join("clients/example.log"))?
    );

    hierarchy.stop();
    Ok(())
}
