//! Who may ask the local server for recursion: `--allow` (and a lab's `[local] allow`),
//! by default loopback and the networks it is bound on. Others get REFUSED over DNS
//! (UDP and TCP) and `0XFE, NAME, Access refused` over the line protocol, and the
//! connection is closed; the root and TLD servers answer everyone.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;

use hickory_proto::op::ResponseCode;

use crate::harness::{
    connect_from, dns_frame, dns_id_rcode, dns_query, read_to_close, run_dnsd, Hierarchy, Line,
    Proc, WAIT,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SECOND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

const REFUSED_LINE: &str = "0XFE, default_local, Access refused";

/// One DNS query over UDP from `from` to `server`: the answer's ID and response code.
#[track_caller]
fn udp_ask(from: IpAddr, server: SocketAddr, id: u16, name: &str) -> (u16, ResponseCode) {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
        .send_to(&dns_query(id, name, true), server)
        .expect("send the query");
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer");
    dns_id_rcode(&buf[..n])
}

/// One DNS query over TCP from `from`: the answer's ID and response code.
#[track_caller]
fn tcp_ask(from: IpAddr, server: SocketAddr, id: u16, name: &str) -> (u16, ResponseCode) {
    let mut stream = connect_from(from, server);
    stream
        .write_all(&dns_frame(&dns_query(id, name, true)))
        .unwrap();
    // Our side closed for writing: a server that serves us answers, then sees the end.
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let got = read_to_close(&mut stream);
    assert!(got.len() > 2, "no answer over TCP from {server}: {got:?}");
    dns_id_rcode(&got[2..])
}

/// Regression: the local server answered anyone who could reach it, an open resolver
/// once bound beyond loopback. With `--allow`, only the listed networks are answered.
#[test]
fn the_access_list_refuses_others_in_their_protocol_and_serves_the_listed() {
    let h = Hierarchy::start();
    let dir = tempfile::tempdir().unwrap();
    let root = h.root.to_string();
    let local = Proc::local(&root, dir.path(), &["--allow", "127.0.0.2/32"]);
    local.wait_for("default_local: answering only 127.0.0.2/32");
    let addr = local.addr();

    // 127.0.0.1 is not listed: told so in a line (whether it speaks first or waits)...
    let mut c = Line::connect(addr);
    c.send("alice");
    assert_eq!(c.recv().as_deref(), Some(REFUSED_LINE));
    assert!(c.closed());
    let mut silent = Line::connect(addr);
    assert_eq!(silent.recv().as_deref(), Some(REFUSED_LINE));
    assert!(silent.closed());
    // ...and REFUSED over DNS, UDP and TCP, with its ID.
    assert_eq!(
        udp_ask(LOOPBACK, addr, 11, "www.google.com."),
        (11, ResponseCode::Refused)
    );
    assert_eq!(
        tcp_ask(LOOPBACK, addr, 12, "www.google.com."),
        (12, ResponseCode::Refused)
    );
    // Nothing was asked upstream for them, or written to a client log.
    assert!(!dir.path().join("clients/alice.log").exists());
    local.wait_for("refusing 127.0.0.1:");

    // 127.0.0.2 is listed: served as ever, over both protocols.
    let mut c = Line::connect_from(SECOND, addr);
    assert_eq!(c.ask("alice"), "You are connected to the Server");
    assert_eq!(
        c.ask("1, www.google.com, R"),
        "0X01, default_local, 142.250.72.4"
    );
    assert_eq!(
        udp_ask(SECOND, addr, 13, "www.google.com."),
        (13, ResponseCode::NoError)
    );
    assert_eq!(
        tcp_ask(SECOND, addr, 14, "www.amazon.com."),
        (14, ResponseCode::NoError)
    );

    // The root and the TLD servers answer everyone (authoritative service is public).
    for server in [h.root, h.tld("com")] {
        assert_eq!(
            udp_ask(LOOPBACK, server, 15, "www.google.com."),
            (15, ResponseCode::NoError)
        );
    }
}

/// The default, bound to loopback: every loopback address is answered.
#[test]
fn by_default_loopback_is_answered() {
    let h = Hierarchy::start();
    for (from, code) in [(LOOPBACK, "0X01"), (SECOND, "0X00")] {
        let mut c = Line::connect_from(from, h.local);
        assert_eq!(c.ask("alice"), "You are connected to the Server", "{from}");
        assert_eq!(
            c.ask("1, www.google.com, R"),
            format!("{code}, default_local, 142.250.72.4")
        );
        assert_eq!(
            udp_ask(from, h.local, 21, "www.google.com."),
            (21, ResponseCode::NoError)
        );
    }
}

/// `--allow` takes networks and addresses, and says what is wrong with anything else;
/// only the local server has it.
#[test]
fn allow_takes_networks_and_refuses_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_dnsd(&["local", "--allow", "10.0.0.0/33"], dir.path(), "");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("prefix length \"33\" of \"10.0.0.0/33\" is not a number from 0 to 32"),
        "{err}"
    );
    let (code, _, err) = run_dnsd(&["local", "--allow", "localhost"], dir.path(), "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not an IP address or a network"), "{err}");
    for role in [&["root", "root.dat"][..], &["tld", "com", "com.dat"]] {
        let mut args = role.to_vec();
        args.extend(["--allow", "127.0.0.1"]);
        let (code, _, err) = run_dnsd(&args, dir.path(), "");
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    let (code, out, _) = run_dnsd(&["local", "--help"], dir.path(), "");
    assert_eq!(code, 0);
    assert!(out.contains("--allow <CIDR>"), "{out}");
}

/// Runs `ip ARGS`, failing the test if it fails.
#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What this test's namespaces are named: the prefix, then the test process's id.
const NETNS_PREFIX: &str = "dnsdal-";

/// Deletes namespaces left by an earlier run killed before its cleanup: only those of
/// a process that is gone.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A network namespace of this test's, deleted when dropped (after the processes in
/// it, which are dropped first).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs `f` on a thread of this process moved into network namespace `ns`, so that its
/// sockets are that namespace's (only the calling thread changes namespace).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns takes a file descriptor that stays open for the call and a
        // namespace type; it changes only this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the thread in the namespace")
}

/// The default away from loopback, on real interface networks: a namespace with
/// 10.77.1.1/24, 10.77.1.9/24 and 10.77.2.1/24 (and 10.88.0.0/24 routed to it, on no interface).
/// Bound to 10.77.1.1, the local server answers 10.77.1.0/24 and loopback, and refuses
/// 10.77.2.1; bound to 0.0.0.0, it answers every interface's network, and refuses
/// 10.88.0.5, which is this host's without being on any interface.
#[test]
#[cfg_attr(missing_netns, ignore = "needs root and iproute2 (network namespaces)")]
fn by_default_the_networks_of_the_bound_address_are_answered() {
    remove_stale_namespaces();
    let ns = Netns(format!("{NETNS_PREFIX}{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    for args in [
        &["link", "set", "lo", "up"][..],
        // A veth pair with both ends here: an interface to hold the addresses (the
        // kernel may lack the dummy type), all of them this host's.
        &["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        &["link", "set", "v0", "up"],
        &["link", "set", "v1", "up"],
        &["addr", "add", "10.77.1.1/24", "dev", "v0"],
        &["addr", "add", "10.77.1.9/24", "dev", "v0"],
        &["addr", "add", "10.77.2.1/24", "dev", "v0"],
        &["route", "add", "local", "10.88.0.0/24", "dev", "lo"],
    ] {
        let mut all = vec!["-n", &ns.0];
        all.extend_from_slice(args);
        ip(&all);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cache.dat"), "www.lab.com 10.0.0.1\n").unwrap();
    let start = |bind: &str| {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns.0, crate::harness::dnsd_bin()])
            .args([
                "local",
                "--bind",
                bind,
                "--port",
                "0",
                "--root",
                "127.0.0.1:9",
            ])
            .args(["--cache", "cache.dat", "--log-dir", "."])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null());
        let mut p = Proc::run(command);
        p.addr = Some(p.wait_listening());
        p
    };
    let bound = start("10.77.1.1");
    let unspecified = start("0.0.0.0");
    bound.wait_for("answering only 127.0.0.0/8, ::1/128, 10.77.1.0/24");
    let (bound_addr, any_port) = (bound.addr(), unspecified.addr().port());

    let seen = in_netns(&ns.0, move || {
        let any = SocketAddr::new("10.77.1.1".parse().unwrap(), any_port);
        let mut seen = Vec::new();
        for (server, from) in [
            (bound_addr, "10.77.1.9"),
            (bound_addr, "127.0.0.1"),
            (bound_addr, "10.77.2.1"),
            (any, "10.77.2.1"),
            (any, "127.0.0.1"),
            (any, "10.88.0.5"),
        ] {
            let from: IpAddr = from.parse().unwrap();
            let udp = udp_ask(from, server, 31, "www.lab.com.").1;
            let tcp = tcp_ask(from, server, 32, "www.lab.com.").1;
            let mut line = Line::from_stream(connect_from(from, server));
            let reply = line.ask("alice");
            seen.push(format!("{from} -> {server}: {udp:?} {tcp:?} {reply}"));
        }
        seen
    });
    let greeting = "You are connected to the Server";
    let any = format!("10.77.1.1:{any_port}");
    let expected = [
        format!("10.77.1.9 -> {bound_addr}: NoError NoError {greeting}"),
        format!("127.0.0.1 -> {bound_addr}: NoError NoError {greeting}"),
        format!("10.77.2.1 -> {bound_addr}: Refused Refused {REFUSED_LINE}"),
        format!("10.77.2.1 -> {any}: NoError NoError {greeting}"),
        format!("127.0.0.1 -> {any}: NoError NoError {greeting}"),
        format!("10.88.0.5 -> {any}: Refused Refused {REFUSED_LINE}"),
    ];
    assert_eq!(seen, expected);
    drop((bound, unspecified));
}
