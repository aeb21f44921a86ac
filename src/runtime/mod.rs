//! Running a command: its flags checked into a [`Config`], then
//! executed — servers until a signal (with the file-descriptor limit raised and checked,
//! and the metrics endpoint beside them), or one of the tools.

pub mod config;
pub mod endpoint;
pub mod hierarchy;
pub mod lab;
pub mod signals;

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;

use crate::cli::Cli;
use crate::error::Error;
use crate::line::client;
use crate::ops::fds;
use crate::ops::metrics::Metrics;
use crate::roles::RoleConfig;
use crate::runtime::config::Config;
use crate::runtime::hierarchy::HierarchyBuilder;
use crate::server::{self, Shutdown};
use crate::tools::{bench, check, trace};

/// Runs the command the flags describe.
pub fn run(cli: Cli) -> Result<(), Error> {
    execute(Config::from_cli(cli)?)
}

/// Runs a checked command.
pub fn execute(config: Config) -> Result<(), Error> {
    match config {
        Config::Up { hierarchy, metrics } => serve_up(*hierarchy, metrics),
        Config::Local { server, metrics } => serve(server, metrics),
        Config::Root { server, metrics } => serve(server, metrics),
        Config::Tld { server, metrics } => serve(server, metrics),
        Config::Client(config) => {
            let stdin = std::io::stdin();
            let interactive = stdin.is_terminal();
            let mut input: Box<dyn BufRead> = Box::new(stdin.lock());
            let stdout = std::io::stdout();
            let mut output = stdout.lock();
            Ok(client::run(&config, &mut input, &mut output, interactive)?)
        }
        Config::Bench(config) => bench::run(config),
        Config::BenchReport(config) => bench::report::write(&config),
        Config::BenchShow(files) => bench::report::show(&files, &mut std::io::stdout().lock()),
        Config::Check(config) => check::run(
            &config,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Config::Trace(config) => Ok(trace::run(&config, &mut std::io::stdout().lock())?),
    }
}

/// Runs one server until SIGINT or SIGTERM; SIGHUP re-reads its files. What it needs of
/// file descriptors is checked (after raising the soft limit) before it starts. With
/// `metrics`, they are served there, and the server records through them.
fn serve<C: RoleConfig>(config: C, metrics: Option<SocketAddr>) -> Result<(), Error> {
    prepare_fds(&[config.fd_need()])?;
    let (shutdown, reloader) = signals::install()?;
    with_metrics(metrics, &shutdown, |metrics| {
        let running = config.start(shutdown.clone(), metrics)?;
        reloader.set(vec![running.reload.clone()]);
        running.join();
        Ok(())
    })
}

/// Starts the hierarchy, says where it is, and waits until a signal stops it.
fn serve_up(builder: HierarchyBuilder, metrics: Option<SocketAddr>) -> Result<(), Error> {
    prepare_fds(&builder.fd_needs())?;
    let (shutdown, reloader) = signals::install()?;
    let stop = shutdown.clone();
    with_metrics(metrics, &stop, |metrics| {
        let log_dir = builder.log_dir_path().to_owned();
        let hierarchy = builder.start_with(shutdown, metrics)?;
        reloader.set(hierarchy.reloads());
        println!("dnsd: the hierarchy is up");
        println!("  root            {}", hierarchy.root);
        for (tld, addr) in &hierarchy.tlds {
            println!("  tld {tld:<11} {addr}");
            for (zone, addr) in &hierarchy.zones {
                if zone.rsplit('.').next() == Some(tld) {
                    println!("    zone {zone:<10} {addr}   (delegated by {tld})");
                }
            }
        }
        println!(
            "  local           {}   (logs in {})",
            hierarchy.local,
            log_dir.display()
        );
        let dig =
            |addr: SocketAddr, rest: &str| format!("dig @{} -p {} {rest}", addr.ip(), addr.port());
        println!("try:");
        println!("  dnsd client alice --server {}", hierarchy.local);
        println!(
            "  {}   (the local server resolves it; add +tcp for TCP)",
            dig(hierarchy.local, "www.google.com")
        );
        println!(
            "  {}   (the root's referral, with glue)",
            dig(hierarchy.root, "www.google.com +norecurse")
        );
        if let Some(com) = hierarchy.tld("com") {
            println!(
                "  {}   (com's authoritative answer: aa)",
                dig(com, "www.google.com")
            );
        }
        if let Some((zone, addr)) = hierarchy.zones.first() {
            println!(
                "  dnsd trace www.{zone} --root {}   (root -> {} -> {zone})",
                hierarchy.root,
                zone.rsplit('.').next().unwrap_or(zone)
            );
            println!(
                "  {}   (its own server: MX with additionals)",
                dig(*addr, &format!("{zone} MX"))
            );
        }
        println!(
            "Ctrl-C stops; kill -HUP {} re-reads the zone files.",
            std::process::id()
        );
        hierarchy.join();
        Ok(())
    })
}

/// Raises the open-file limit and checks that `needs` fit in it. Only a
/// `--max-connections` other than the default is refused when they do not (the default
/// is warned about: `dnsd up` must start where the hard limit is low).
fn prepare_fds(needs: &[fds::Need]) -> Result<(), Error> {
    let asked = needs
        .iter()
        .any(|n| n.max_connections != server::DEFAULT_MAX_CONNECTIONS);
    fds::prepare(needs, asked)
}

/// Runs `serve` with the metrics served at `addr` (or disabled without one), and stops
/// the endpoint with the servers, or when `serve` fails.
fn with_metrics(
    addr: Option<SocketAddr>,
    shutdown: &Shutdown,
    serve: impl FnOnce(&Metrics) -> Result<(), Error>,
) -> Result<(), Error> {
    let Some(addr) = addr else {
        return serve(&Metrics::disabled());
    };
    let metrics = Metrics::new();
    let endpoint = endpoint::serve(&metrics, addr, shutdown.clone())?;
    let served = serve(&metrics);
    shutdown.trigger();
    endpoint.join();
    served
}
