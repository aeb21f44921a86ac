//! From flags to validated settings: each command's clap struct ([`crate::cli`]) is
//! checked once, here, and the files it names are read, giving the [`Config`] that
//! [`super::execute`] runs. A flag that clap cannot check (a server's name, a TLD, a
//! client id...) is refused here with a [`ConfigError`], exit 2.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::cli::{
    AuthArgs, BenchArgs, BenchCommand, BenchReportArgs, BenchTool, CheckArgs, Cli, ClientArgs,
    Command, LimitArgs, LocalArgs, ProcessArgs, RootArgs, ServerArgs, TldArgs, TraceArgs,
    TransferArgs, UpArgs,
};
use crate::dns::answer::DnsSettings;
use crate::dns::xfr::TransferSettings;
use crate::error::{ConfigError, Error};
use crate::line::client::ClientConfig;
use crate::line::frame::FrameLimits;
use crate::line::message::{valid_client_id, ServerName};
use crate::model::name::{parse_tld, Name};
use crate::net::resolve_host_port;
use crate::ops::reload::Source as Files;
use crate::roles::local::LocalConfig;
use crate::roles::root::RootConfig;
use crate::roles::tld::{self, TldConfig};
use crate::roles::RoleConfig;
use crate::runtime::hierarchy::HierarchyBuilder;
use crate::runtime::lab::Lab;
use crate::server::access::{Access, Allow};
use crate::server::Limits;
use crate::tools::bench::report::ReportConfig;
use crate::tools::bench::{self, BenchConfig, Names, Workload};
use crate::tools::check::{CheckConfig, CheckFile, Kind};
use crate::tools::trace::{Output, TraceConfig};
use crate::web::{self, WebConfig};
use crate::zone::{RootTable, ZoneFile, ZoneSet};

/// What a server process does once its sockets are bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    /// The user to become (`--user`).
    pub user: Option<String>,
    /// Where to write the process id (`--pid-file`).
    pub pid_file: Option<PathBuf>,
}

impl Process {
    /// The `--user` looked up, if given: done before anything is bound, so that a
    /// name that is no user fails at once.
    pub fn lookup_user(&self) -> Result<Option<crate::ops::privileges::User>, Error> {
        self.user
            .as_deref()
            .map(crate::ops::privileges::lookup)
            .transpose()
    }
}

impl From<ProcessArgs> for Process {
    fn from(args: ProcessArgs) -> Process {
        Process {
            user: args.user,
            pid_file: args.pid_file,
        }
    }
}

/// A command, checked: what it runs, with every setting valid.
#[derive(Debug)]
pub enum Config {
    /// `dnsd up`: the hierarchy, from a lab file, a zones directory or the built-in
    /// zones.
    Up {
        hierarchy: Box<HierarchyBuilder>,
        metrics: Option<SocketAddr>,
        /// The web view, where to serve it (`--web`).
        web: Option<WebConfig>,
        /// `--user`, `--pid-file`.
        process: Process,
    },
    /// `dnsd local`.
    Local {
        server: LocalConfig,
        metrics: Option<SocketAddr>,
        /// The web view, where to serve it (`--web`).
        web: Option<WebConfig>,
        /// `--user`, `--pid-file`.
        process: Process,
    },
    /// `dnsd root`.
    Root {
        server: RootConfig,
        metrics: Option<SocketAddr>,
        /// The web view, where to serve it (`--web`).
        web: Option<WebConfig>,
        /// `--user`, `--pid-file`.
        process: Process,
    },
    /// `dnsd tld`.
    Tld {
        server: TldConfig,
        metrics: Option<SocketAddr>,
        /// The web view, where to serve it (`--web`).
        web: Option<WebConfig>,
        /// `--user`, `--pid-file`.
        process: Process,
    },
    /// `dnsd client`.
    Client(ClientConfig),
    /// `dnsd bench`.
    Bench(BenchConfig),
    /// `dnsd bench report`.
    BenchReport(ReportConfig),
    /// `dnsd bench show`: the result files.
    BenchShow(Vec<PathBuf>),
    /// `dnsd check`.
    Check(CheckConfig),
    /// `dnsd trace`.
    Trace(TraceConfig),
}

impl Config {
    /// Checks the command's flags and reads the files they name.
    pub fn from_cli(cli: Cli) -> Result<Config, Error> {
        Ok(match cli.command {
            Command::Up(args) => up(args)?,
            Command::Local(args) => local(args)?,
            Command::Root(args) => root(args)?,
            Command::Tld(args) => tld(args)?,
            Command::Auth(args) => auth(args)?,
            Command::Client(args) => Config::Client(client(args)?),
            Command::Bench(command) => bench(*command)?,
            Command::Check(args) => Config::Check(check(args)?),
            Command::Trace(args) => Config::Trace(trace(args)?),
        })
    }
}

/// The limits every server enforces, as the flags set them.
fn limits(args: &LimitArgs) -> Limits {
    Limits {
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip.map(|n| n as usize),
        frame: FrameLimits {
            max_line: args.max_line as usize,
            idle_timeout: args.idle_timeout.0,
            legacy: true,
        },
        dns: DnsSettings {
            edns_payload: args.edns_payload,
        },
    }
}

/// Zone transfers, as the flags set them.
fn transfers(args: &TransferArgs) -> TransferSettings {
    TransferSettings {
        allow: Access::only(args.allow_transfer.clone()),
        notify: args.notify.clone(),
    }
}

fn up(args: UpArgs) -> Result<Config, Error> {
    let hierarchy = match &args.config {
        Some(path) => Lab::load(path)?.builder(),
        None => HierarchyBuilder::from_zones(args.zones.as_deref(), args.any_port)?
            .log_dir(&args.log_dir)
            .limits(limits(&args.limits))
            .upstream_timeout(args.upstream.upstream_timeout.0)
            .upstream_protocol(args.upstream.upstream_protocol)
            .max_pending(args.upstream.max_pending as usize)
            .transfers(&transfers(&args.transfers))
            .local(|c| {
                c.with_dns_mode(args.dns_mode)
                    .with_delegation_cache(!args.delegations.no_delegation_cache)
                    .with_max_client_logs(args.client_logs.max_client_logs)
            }),
    };
    // On by default, on loopback: on a free port where every server takes one.
    let web = match (args.no_web, args.web) {
        (true, _) => None,
        (false, Some(addr)) => Some(addr),
        (false, None) if args.any_port => Some(SocketAddr::new(web::DEFAULT_ADDR.ip(), 0)),
        (false, None) => Some(web::DEFAULT_ADDR),
    };
    Ok(Config::Up {
        hierarchy: Box::new(hierarchy),
        metrics: args.metrics,
        web: web.map(|addr| WebConfig {
            addr,
            allow_remote_flush: args.web_flags.web_allow_flush,
            or_any_port: args.web.is_none(),
        }),
        process: Process::from(args.process),
    })
}

fn local(args: LocalArgs) -> Result<Config, Error> {
    let source = Files::cache_files(args.cache.clone());
    let cache = source.load()?;
    let name = ServerName::new(&args.name).map_err(|source| ConfigError::ServerName {
        name: args.name.clone(),
        source,
    })?;
    let server = LocalConfig::new(args.root, cache, args.log_dir)
        .with_source((!args.cache.is_empty()).then_some(source))
        .with_warm(args.warm)
        .with_name(name)
        .with_bind(SocketAddr::new(args.server.bind, args.port))
        .with_max_ttl(args.max_ttl.0)
        .with_dns_mode(args.dns_mode)
        .with_cache_size(args.cache_size)
        .with_cache_bytes(args.cache_bytes.0)
        .with_max_client_logs(args.client_logs.max_client_logs)
        .with_allow(match args.allow {
            nets if nets.is_empty() => Allow::BoundNetworks,
            nets => Allow::Only(nets),
        })
        .with_delegation_cache(!args.delegations.no_delegation_cache)
        .with_limits(limits(&args.server.limits))
        .with_upstream_timeout(args.upstream.upstream_timeout.0)
        .with_upstream_protocol(args.upstream.upstream_protocol)
        .with_max_pending(args.upstream.max_pending as usize);
    Ok(Config::Local {
        server,
        metrics: args.server.metrics,
        web: web_config(&args.server),
        process: Process::from(args.server.process),
    })
}

fn root(args: RootArgs) -> Result<Config, Error> {
    let server = RootConfig::new(RootTable::load(&args.table)?)
        .with_source(Some(Files::table_file(args.table)))
        .with_bind(SocketAddr::new(args.server.bind, args.port))
        .with_advertise(published(&args.server)?)
        .with_limits(limits(&args.server.limits))
        .with_upstream_timeout(args.upstream.upstream_timeout.0)
        .with_upstream_protocol(args.upstream.upstream_protocol)
        .with_max_pending(args.upstream.max_pending as usize)
        .with_transfers(transfers(&args.transfers));
    Ok(Config::Root {
        server,
        metrics: args.server.metrics,
        web: web_config(&args.server),
        process: Process::from(args.server.process),
    })
}

fn tld(args: TldArgs) -> Result<Config, Error> {
    let tld = parse_tld(&args.tld).map_err(|source| ConfigError::Tld {
        tld: args.tld.clone(),
        source,
    })?;
    let port = args
        .port
        .or_else(|| tld::default_port(&tld))
        .ok_or_else(|| ConfigError::NoDefaultPort { tld: tld.clone() })?;
    let origin = Name::from_wire(&tld);
    let server = TldConfig::with_zone(&tld, ZoneFile::load(&args.zone, &origin)?)
        .with_source(Some(Files::tld_file(args.zone, origin)))
        .with_bind(SocketAddr::new(args.server.bind, port))
        .with_advertise(published(&args.server)?)
        .with_limits(limits(&args.server.limits))
        .with_transfers(transfers(&args.transfers));
    Ok(Config::Tld {
        server,
        metrics: args.server.metrics,
        web: web_config(&args.server),
        process: Process::from(args.server.process),
    })
}

/// The address an authoritative server publishes as its own: `--advertise`, or nothing
/// (the bound address); an error for a server bound to 0.0.0.0 or `::` without one,
/// which would publish an address no client can reach.
fn published(server: &ServerArgs) -> Result<Option<IpAddr>, ConfigError> {
    match server.advertise {
        Some(ip) if ip.is_unspecified() => Err(ConfigError::Unpublishable {
            bind: ip,
            flag: "--advertise",
        }),
        Some(ip) => Ok(Some(ip)),
        None if server.bind.is_unspecified() => Err(ConfigError::Unpublishable {
            bind: server.bind,
            flag: "--bind",
        }),
        None => Ok(None),
    }
}

fn auth(args: AuthArgs) -> Result<Config, Error> {
    let zones = ZoneSet::load_masters(&args.zones)?;
    let name = match (&args.name, zones.0.first()) {
        (Some(name), _) => name.clone(),
        (None, Some(ZoneFile::Master(zone))) if !zone.origin().is_root() => {
            zone.origin().to_string()
        }
        _ => "auth".to_owned(),
    };
    let server = TldConfig::with_zones(&name, zones)
        .with_source(Some(Files::master_files(args.zones)))
        .with_bind(SocketAddr::new(args.server.bind, args.port))
        .with_advertise(published(&args.server)?)
        .with_limits(limits(&args.server.limits))
        .with_transfers(transfers(&args.transfers));
    Ok(Config::Tld {
        server,
        metrics: args.server.metrics,
        web: web_config(&args.server),
        process: Process::from(args.server.process),
    })
}

/// A standalone server's web view: only when `--web` asks for it.
fn web_config(args: &ServerArgs) -> Option<WebConfig> {
    args.web.map(|addr| WebConfig {
        addr,
        allow_remote_flush: args.web_flags.web_allow_flush,
        or_any_port: false,
    })
}

fn client(args: ClientArgs) -> Result<ClientConfig, Error> {
    if valid_client_id(args.id.as_bytes()).is_none() {
        return Err(ConfigError::ClientId { id: args.id }.into());
    }
    Ok(ClientConfig {
        id: args.id,
        server: args.server,
        legacy: args.legacy,
        timeout: args.timeout.0,
    })
}

fn bench(command: BenchCommand) -> Result<Config, Error> {
    Ok(match command.tool {
        None => Config::Bench(bench_run(&command.args)?),
        Some(BenchTool::Report(args)) => Config::BenchReport(bench_report(*args)),
        Some(BenchTool::Show(args)) => Config::BenchShow(args.files),
    })
}

/// What `dnsd bench` measures, and how it reports.
fn bench_run(args: &BenchArgs) -> Result<BenchConfig, Error> {
    let server = resolve_host_port(&args.server).map_err(|source| ConfigError::Server {
        server: args.server.clone(),
        source,
    })?[0];
    let names = match &args.names {
        Some(path) => Names::load(path)?,
        None => Names::Pattern(args.pattern.clone()),
    };
    let duration = match (args.duration, args.requests) {
        (None, None) => Some(bench::DEFAULT_DURATION),
        (d, _) => d.map(|d| d.0),
    };
    let workload = Workload {
        server,
        connections: args.connections as usize,
        duration,
        requests: args.requests,
        first: args.first,
        mode: args.mode,
        names,
        client_id: (!args.no_id).then(|| args.client_id.clone()),
        legacy: args.legacy,
        timeout: args.timeout.0,
        dns: args.dns,
    };
    Ok(BenchConfig {
        workload,
        ceiling_hops: args.ceiling.then_some(args.ceiling_hops),
        json: args.json,
    })
}

/// The facts about a `just bench` run that only the script knows are printed as given.
fn bench_report(args: BenchReportArgs) -> ReportConfig {
    ReportConfig {
        results: args.results,
        out: args.out,
        machine: args.machine,
        date: args.date,
        commit: args.commit,
        duration: args.duration,
        orig_slow_secs: args.orig_slow_secs,
        original: args.original,
        elapsed: args.elapsed,
        load: args.load,
        res_secs: args.res_secs,
        rounds: args.rounds,
        notes: args.notes.filter(|p| !p.as_os_str().is_empty()),
    }
}

fn check(args: CheckArgs) -> Result<CheckConfig, Error> {
    let told =
        |paths: Vec<PathBuf>, kind| paths.into_iter().map(move |path| CheckFile { path, kind });
    let files: Vec<CheckFile> = told(args.files, None)
        .chain(told(args.root, Some(Kind::Root)))
        .chain(told(args.zone, Some(Kind::Zone)))
        .collect();
    if files.is_empty() {
        return Err(ConfigError::NoFiles.into());
    }
    Ok(CheckConfig { files })
}

fn trace(args: TraceArgs) -> Result<TraceConfig, Error> {
    // A host name, or a TLD itself (`dnsd trace -t NS com`).
    let name = Name::parse(&args.name)
        .or_else(|e| {
            parse_tld(&args.name)
                .map(|tld| Name::from_wire(&tld))
                .map_err(|_| e)
        })
        .map_err(|source| ConfigError::Name {
            name: args.name.clone(),
            source,
        })?;
    let output = if args.json {
        Output::Json
    } else if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        Output::Color
    } else {
        Output::Plain
    };
    Ok(TraceConfig {
        name,
        qtype: args.qtype,
        mode: args.mode,
        root: args.root,
        timeout: args.timeout.0,
        output,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Result<Config, Error> {
        let cli = Cli::try_parse_from(std::iter::once("dnsd").chain(args.iter().copied()))
            .expect("the flags parse");
        Config::from_cli(cli)
    }

    #[test]
    fn the_web_view_is_on_for_up_and_asked_for_elsewhere() {
        let web = |args: &[&str]| match config(args) {
            Ok(Config::Up { web, .. } | Config::Local { web, .. } | Config::Tld { web, .. }) => web,
            other => panic!("{args:?}: {other:?}"),
        };
        let default = web(&["up"]).unwrap();
        assert_eq!(default.addr, crate::web::DEFAULT_ADDR);
        assert!(default.or_any_port && !default.allow_remote_flush);
        assert_eq!(web(&["up", "--any-port"]).unwrap().addr.port(), 0);
        assert_eq!(web(&["up", "--no-web"]), None);
        let asked = web(&["up", "--web", "9000", "--web-allow-flush"]).unwrap();
        assert_eq!(asked.addr, "127.0.0.1:9000".parse().unwrap());
        assert!(!asked.or_any_port && asked.allow_remote_flush);
        assert_eq!(web(&["local"]), None);
        assert!(web(&["local", "--web", "0"]).is_some());
    }

    #[test]
    fn flags_clap_cannot_check_are_usage_errors() {
        for (args, message) in [
            (
                &["local", "--name", "a b"][..],
                "--name \"a b\": must be non-empty, without commas or spaces",
            ),
            (&["client", "../x"], "bad client id \"../x\""),
            (&["check"], "no file to check"),
            (&["trace", "a..b"], "bad name \"a..b\": empty label"),
        ] {
            let err = config(args).unwrap_err();
            assert!(err.to_string().starts_with(message), "{args:?}: {err}");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn flags_become_the_server_config() {
        let Ok(Config::Local {
            server, metrics, ..
        }) = config(&[
            "local",
            "--port",
            "0",
            "--max-connections",
            "7",
            "--metrics",
            "9100",
        ])
        else {
            panic!("not a local server");
        };
        assert_eq!(server.serving().limits().max_connections, 7);
        assert_eq!(server.serving().bind().port(), 0);
        assert_eq!(metrics.map(|m| m.port()), Some(9100));
        assert!(server.delegation_cache(), "on unless turned off");
        let Ok(Config::Local { server, .. }) = config(&["local", "--no-delegation-cache"]) else {
            panic!("not a local server");
        };
        assert!(!server.delegation_cache());
    }

    #[test]
    fn max_ttl_and_its_older_name_and_cache_bytes() {
        let local = |args: &[&str]| match config(args) {
            Ok(Config::Local { server, .. }) => server,
            other => panic!("not a local server: {other:?}"),
        };
        let defaults = local(&["local"]);
        assert_eq!(defaults.max_ttl(), Duration::from_secs(86_400));
        assert_eq!(defaults.cache_bytes(), 64 << 20);
        let server = local(&["local", "--max-ttl", "60", "--cache-bytes", "512K"]);
        assert_eq!(server.max_ttl(), Duration::from_secs(60));
        assert_eq!(server.cache_bytes(), 512 << 10);
        assert_eq!(
            local(&["local", "--ttl", "2"]).max_ttl(),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn transfer_flags_become_the_tld_settings_and_no_one_may_by_default() {
        let zone = concat!(env!("CARGO_MANIFEST_DIR"), "/zones/com.dat");
        let tld = |extra: &[&str]| {
            let args: Vec<&str> = ["tld", "com", zone, "--port", "0"]
                .into_iter()
                .chain(extra.iter().copied())
                .collect();
            match config(&args) {
                Ok(Config::Tld { server, .. }) => server,
                other => panic!("not a TLD server: {other:?}"),
            }
        };
        let ip = |s: &str| s.parse().unwrap();
        let server = tld(&[
            "--allow-transfer",
            "10.0.0.0/8",
            "--allow-transfer",
            "::1",
            "--notify",
            "127.0.0.1:5300",
        ]);
        let transfers = server.transfers();
        assert!(transfers.allow.allows(ip("10.1.2.3")) && transfers.allow.allows(ip("::1")));
        assert!(!transfers.allow.allows(ip("127.0.0.1")));
        assert_eq!(transfers.notify, ["127.0.0.1:5300".parse().unwrap()]);
        let default = tld(&[]);
        assert!(!default.transfers().allow.allows(ip("127.0.0.1")));
        assert!(default.transfers().notify.is_empty());
    }
}
