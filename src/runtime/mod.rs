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
use std::path::Path;

use crate::cli::Cli;
use crate::error::Error;
use crate::line::client;
use crate::ops::metrics::{self, Metrics};
use crate::ops::{fds, privileges, querylog};
use crate::roles::RoleConfig;
use crate::runtime::config::{Config, Process};
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
            process,
        } => serve_up(*hierarchy, metrics, web, &process),
        Config::Local {
            server,
            metrics,
            web,
            process,
        } => {
            let logs = server.log_dir().to_owned();
            let seen = Seen {
                name: server.name().to_owned(),
                role: "local",
                root: Some(server.root()),
            };
            let web = web.map(|w| (w, seen));
            serve(server, metrics, web, &process, Some(&logs))
        }
        Config::Root {
            server,
            metrics,
            web,
            process,
        } => {
            let seen = Seen {
                name: "root".to_owned(),
                role: "root",
                root: None,
            };
            serve(server, metrics, web.map(|w| (w, seen)), &process, None)
        }
        Config::Tld {
            server,
            metrics,
            web,
            process,
        } => {
            let seen = Seen {
                name: server.tld().to_owned(),
                role: "tld",
                root: None,
            };
            serve(server, metrics, web.map(|w| (w, seen)), &process, None)
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
/// its web view is served. With `user`, the process becomes that user once the server
/// (and its web view) is bound (its `logs` must then be writable by it).
fn serve<C: RoleConfig>(
    config: C,
    metrics: Option<SocketAddr>,
    web: Option<(WebConfig, Seen)>,
    process: &Process,
    logs: Option<&Path>,
) -> Result<(), Error> {
    let user = process.lookup_user()?;
    prepare_fds(&[config.fd_need()])?;
    let (shutdown, reloader) = signals::install()?;
    with_metrics(metrics, &shutdown, |metrics, _| {
        let running = config.start(shutdown.clone(), metrics)?;
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
        let mut bound = vec![running.addr];
        bound.extend(web.as_ref().map(|w| w.addr));
        if let Err(e) = settle(process, user.as_ref(), &bound, logs) {
            shutdown.trigger();
            running.join();
            if let Some(web) = web {
                web.join();
            }
            return Err(e);
        }
        reloader.set(vec![running.reload.clone()]);
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

/// Once every socket is bound: writes the `--pid-file`; becomes `user` and checks that
/// the log directory `logs` is still writable; or, running as root on a port below 1024
/// without `--user`, says loudly that it keeps root for good.
fn settle(
    process: &Process,
    user: Option<&privileges::User>,
    bound: &[SocketAddr],
    logs: Option<&Path>,
) -> Result<(), Error> {
    if let Some(path) = &process.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| Error::io(format!("--pid-file {}", path.display()), e))?;
    }
    match user {
        Some(user) => {
            let owned = logs.map(querylog::own_files).unwrap_or_default();
            if privileges::is_root() {
                privileges::give(user, &owned)?;
            }
            privileges::drop_to(user)?;
            if let Some(dir) = logs {
                let owned: Vec<&Path> = owned.iter().map(|p| p.as_path()).collect();
                privileges::check_writable(user, dir, &owned)?;
            }
        }
        None if privileges::is_root() && bound.iter().any(|a| a.port() != 0 && a.port() < 1024) => {
            log::warn!(
                "RUNNING AS ROOT on a privileged port, and staying root: give --user NAME \
                 (e.g. --user nobody) to drop privileges once the sockets are bound"
            );
        }
        None => {}
    }
    Ok(())
}

/// Starts the hierarchy, says where it is, and waits until a signal stops it.
fn serve_up(
    builder: HierarchyBuilder,
    metrics: Option<SocketAddr>,
    web: Option<WebConfig>,
    process: &Process,
) -> Result<(), Error> {
    let user = process.lookup_user()?;
    prepare_fds(&builder.fd_needs())?;
    let (shutdown, reloader) = signals::install()?;
    let stop = shutdown.clone();
    with_metrics(metrics, &stop, |metrics, metrics_addr| {
        let log_dir = builder.log_dir_path().to_owned();
        let reread = builder.reads_files();
        let local_name = builder.local_name().to_owned();
        let hierarchy = builder.start_with(shutdown.clone(), metrics)?;
        // Bound with the servers, before privileges go. One that cannot start stops the
        // hierarchy (dropped) with the error.
        let web = match web {
            Some(config) => Some(web::serve(
                hierarchy_view(&hierarchy, &local_name),
                config,
                hierarchy.shutdown.clone(),
            )?),
            None => None,
        };
        let mut bound = vec![hierarchy.root, hierarchy.local];
        bound.extend(hierarchy.tlds.iter().map(|(_, addr)| *addr));
        bound.extend(web.as_ref().map(|w| w.addr));
        bound.extend(hierarchy.zones.iter().map(|(_, addr)| *addr));
        if let Err(e) = settle(process, user.as_ref(), &bound, Some(&log_dir)) {
            shutdown.trigger();
            hierarchy.join();
            if let Some(web) = web {
                web.join();
            }
            return Err(e);
        }
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
        if let Some(web) = &web {
            println!(
                "  web             http://{}/   (watch it resolve)",
                web.addr
            );
        }
        let dig =
            |addr: SocketAddr, rest: &str| format!("dig @{} -p {} {rest}", addr.ip(), addr.port());
        let dnsd = program();
        println!("try:");
        println!("  {dnsd} client alice --server {}", hierarchy.local);
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
        if let Some(addr) = metrics_addr {
            println!("metrics:");
            println!("  curl http://{addr}{}", metrics::PATH);
        }
        let pid = std::process::id();
        if reread {
            println!("Ctrl-C stops; kill -HUP {pid} re-reads the zone files; kill -USR1 {pid} reopens the logs.");
        } else {
            println!("Ctrl-C stops; kill -USR1 {pid} reopens the logs (the zones are built in: nothing to re-read).");
        }
        hierarchy.join();
        if let Some(web) = web {
            web.join();
        }
        Ok(())
    })
}

/// How to run this program again from where it was started: `dnsd` when that is the
/// `dnsd` on PATH (`cargo install --path .`), else its path (`target/release/dnsd`,
/// relative to the current directory when under it), so that every command the banner
/// suggests works as printed.
fn program() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "dnsd".to_owned();
    };
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("dnsd"))
            .find(|p| p.is_file())
    });
    let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok();
    if on_path.is_some_and(|p| same(&p, &exe)) {
        return "dnsd".to_owned();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    match exe.strip_prefix(&cwd) {
        Ok(relative) => relative.display().to_string(),
        Err(_) => exe.display().to_string(),
    }
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

/// Runs `serve` with the metrics served at `addr` (or disabled without one; `serve` is
/// told where they are served), and stops the endpoint with the servers, or when
/// `serve` fails.
fn with_metrics(
    addr: Option<SocketAddr>,
    shutdown: &Shutdown,
    serve: impl FnOnce(&Metrics, Option<SocketAddr>) -> Result<(), Error>,
) -> Result<(), Error> {
    let Some(addr) = addr else {
        return serve(&Metrics::disabled(), None);
    };
    let metrics = Metrics::new();
    let endpoint = endpoint::serve(&metrics, addr, shutdown.clone())?;
    let served = serve(&metrics, Some(endpoint.addr));
    shutdown.trigger();
    endpoint.join();
    served
}
