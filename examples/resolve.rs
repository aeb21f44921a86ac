//! dnsd as a library: start a whole hierarchy in this process, then resolve names
//! through it with [`dnsd::client::Client`], in both modes.
//!
//!     cargo run --example resolve
//!
//! Every server binds port 0 (any free port), so this runs beside a real `dnsd up`.

use std::path::Path;
use std::time::Duration;

use dnsd::client::Client;
use dnsd::name::Name;
use dnsd::protocol::Mode;
use dnsd::roles::local::LocalConfig;
use dnsd::roles::root::RootConfig;
use dnsd::roles::tld::TldConfig;
use dnsd::server::Shutdown;
use dnsd::zone::{RootTable, Zone};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
    // One shutdown handle stops every server at the end.
    let shutdown = Shutdown::new();
    let mut running = Vec::new();

    // A TLD server for each TLD of the sample root table. The table's ports are the
    // original design's fixed ones; the root we start gets a table of where the TLD
    // servers really landed.
    let sample = RootTable::load(&zones.join("root.toml"))?;
    let mut table = RootTable::default();
    for (tld, _) in sample.iter() {
        let zone = Zone::load(&zones.join(format!("{tld}.toml")))?;
        let server = TldConfig::new(tld, zone).start(shutdown.clone())?;
        println!("tld {tld:<4} on {}", server.addr);
        table.insert(tld, server.addr);
        running.push(server);
    }

    let root = RootConfig::new(table).start(shutdown.clone())?;
    println!("root     on {}", root.addr);
    let root_addr = root.addr;
    running.push(root);

    // The local server, seeded with the default cache; its logs go to a temporary
    // directory.
    let logs = tempfile::tempdir()?;
    let cache = Zone::load(&zones.join("default.toml"))?;
    let local = LocalConfig::new(root_addr, cache, logs.path()).start(shutdown.clone())?;
    println!("local    on {}\n", local.addr);

    // A client: connect, send the id, then ask.
    let mut client = Client::connect(&local.addr.to_string(), "example", Duration::from_secs(5))?;
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
        std::fs::read_to_string(logs.path().join("example.log"))?
    );

    shutdown.trigger();
    local.join();
    for server in running {
        server.join();
    }
    Ok(())
}
