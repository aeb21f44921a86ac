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
use crate::runtime::hierarchy::{Hierarchy, HierarchyBuilder};
use crate::server::{self, Shutdown};
use crate::tools::{bench, check, trace};
use crate::web::{self, ServerInfo, View, WebConfig};

/// Runs the command the flags describe.
pub fn run(cli: Cli) -> Result<(), Error> {
    execute(Config::from_cli(cli)?)
}

/// Runs a checked command.
pub fn execute(config: Config) -> Result<(), Error> {
    match config {
        Config::Up {
            hierarchy,
            metrics,
            web,
        } => serve_up(*hierarchy, metrics, web),
        Config::Local {
            server,
            metrics,
            web,
        } => {
            let seen = Seen {
                name: server.name().to_owned(),
                role: "local",
                root: Some(server.root()),
            };
            serve(server, metrics, web.map(|w| (w, seen)))
        }
        Config::Root {
            server,
            metrics,
            web,
        } => {
            let seen = Seen {
                name: "root".to_owned(),
                role: "root",
                root: None,
            };
            serve(server, metrics, web.map(|w| (w, seen)))
        }
        Config::Tld {
            server,
            metrics,
            web,
        } => {
            let seen = Seen {
                name: server.tld().to_owned(),
                role: "tld",
                root: None,
            };
            serve(server, metrics, web.map(|w| (w, seen)))
        }
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

/// What a standalone server's web view shows of it: its name and role, and the root
/// a trace from the page starts at (the local server's root; the root itself).
struct Seen {
    name: String,
    role: &'static str,
    root: Option<SocketAddr>,
}

/// Runs one server until SIGINT or SIGTERM; SIGHUP re-reads its files. What it needs of
/// file descriptors is checked (after raising the soft limit) before it starts. With
/// `metrics`, they are served there, and the server records through them; with `web`,
/// its web view is served.
fn serve<C: RoleConfig>(
    config: C,
    metrics: Option<SocketAddr>,
    web: Option<(WebConfig, Seen)>,
) -> Result<(), Error> {
    prepare_fds(&[config.fd_need()])?;
    let (shutdown, reloader) = signals::install()?;
    with_metrics(metrics, &shutdown, |metrics| {
        let running = config.start(shutdown.clone(), metrics)?;
        reloader.set(vec![running.reload.clone()]);
        let web = match web {
            Some((web_config, seen)) => {
                let view = View {
                    servers: vec![ServerInfo {
                        name: seen.name,
                        role: seen.role,
                        addr: running.addr,
                    }],
                    root: seen.root.or((seen.role == "root").then_some(running.addr)),
                    inspect: running.inspect.clone(),
                };
                match web::serve(view, web_config, shutdown.clone()) {
                    Ok(web) => Some(web),
                    Err(e) => {
                        shutdown.trigger();
                        running.join();
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        running.join();
        if let Some(web) = web {
            web.join();
        }
        Ok(())
    })
}

/// The web view of a whole hierarchy.
fn hierarchy_view(hierarchy: &Hierarchy, local_name: &str) -> View {
    let mut servers = vec![
        ServerInfo {
            name: local_name.to_owned(),
            role: "local",
            addr: hierarchy.local,
        },
        ServerInfo {
            name: "root".to_owned(),
            role: "root",
            addr: hierarchy.root,
        },
    ];
    servers.extend(hierarchy.tlds.iter().map(|(tld, addr)| ServerInfo {
        name: tld.clone(),
        role: "tld",
        addr: *addr,
    }));
    View {
        servers,
        root: Some(hierarchy.root),
        inspect: hierarchy.inspect(),
    }
}

/// Starts the hierarchy, says where it is, and waits until a signal stops it.
fn serve_up(
    builder: HierarchyBuilder,
    metrics: Option<SocketAddr>,
    web: Option<WebConfig>,
) -> Result<(), Error> {
    prepare_fds(&builder.fd_needs())?;
    let (shutdown, reloader) = signals::install()?;
    let stop = shutdown.clone();
    with_metrics(metrics, &stop, |metrics| {
        let log_dir = builder.log_dir_path().to_owned();
        let local_name = builder.local_name().to_owned();
        let hierarchy = builder.start_with(shutdown, metrics)?;
        reloader.set(hierarchy.reloads());
        // A web view that cannot start stops the hierarchy (dropped) with the error.
        let web = match web {
            Some(config) => Some(web::serve(
                hierarchy_view(&hierarchy, &local_name),
                config,
                hierarchy.shutdown.clone(),
            )?),
            None => None,
        };
        println!("dnsd: the hierarchy is up");
        println!("  root            {}", hierarchy.root);
        for (tld, addr) in &hierarchy.tlds {
            println!("  tld {tld:<11} {addr}");
        }
        println!(
            "  local           {}   (logs in {})",
            hierarchy.local,
            log_dir.display()
        );
        if let Some(web) = &web {
            println!(
                "  web             http://{}/   (watch it resolve)",
                web.addr
            );
        }
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
        println!(
            "Ctrl-C stops; kill -HUP {} re-reads the zone files.",
            std::process::id()
        );
        hierarchy.join();
        if let Some(web) = web {
            web.join();
        }
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
