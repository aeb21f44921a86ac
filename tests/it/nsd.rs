//! `dnsd local` resolving through NSD, a standard authoritative server, as its root and
//! TLD servers: on port 53, in a network namespace of the test's own ([`Netns`]), with
//! referrals that carry no SRV port hint (so dnsd asks port 53, as any resolver would).
//!
//! Two NSDs on two addresses of the namespace's loopback, as the root and the TLD
//! servers are different hosts: one serves the root zone (`.` with its SOA and NS, `com`
//! and `org` delegated with glue), the other the `com` and `org` zones (the names of
//! `zones/com.dat` and `zones/org.dat`, the www rule written as CNAMEs). The local server
//! asks them over DNS (`--upstream-protocol dns`: NSD speaks no line protocol), in mode I
//! (NSD does not recurse), and is asked over the line protocol and over DNS.

use std::net::SocketAddr;
use std::path::Path;

use crate::dns::{require_tool, sbin};
use crate::netns::Netns;
use crate::resolvers::{check, check_negative};

/// The NSD serving the root zone, and the one serving `com` and `org`.
const ROOT_NS: &str = "127.0.0.2";
const TLD_NS: &str = "127.0.0.3";

/// The root zone: its own SOA and NS, and a delegation with glue for each TLD.
const ROOT_ZONE: &str = "\
$ORIGIN .
$TTL 86400
@            IN SOA ns.root. hostmaster.root. 1 1800 900 604800 86400
@            IN NS  ns.root.
ns.root.     IN A   127.0.0.2
com.  172800 IN NS  ns.com.
ns.com. 172800 IN A 127.0.0.3
org.  172800 IN NS  ns.org.
ns.org. 172800 IN A 127.0.0.3
";

/// `zones/com.dat` as a DNS zone, the www rule as CNAMEs, plus a name with an IPv6
/// address and an empty non-terminal (`corp.com`).
const COM_ZONE: &str = "\
$ORIGIN com.
$TTL 3600
@          IN SOA ns.com. hostmaster.com. 1 3600 600 604800 300
@          IN NS  ns.com.
ns         IN A   127.0.0.3
www.google IN A   142.250.72.4
google     IN CNAME www.google.com.
www.amazon IN A   205.251.242.103
amazon     IN CNAME www.amazon.com.
www.github IN A   140.82.112.4
github     IN CNAME www.github.com.
www.v6     IN A   192.0.2.6
www.v6     IN AAAA 2001:db8::6
mail.corp  IN A   192.0.2.25
";

/// `zones/org.dat` as a DNS zone.
const ORG_ZONE: &str = "\
$ORIGIN org.
$TTL 3600
@             IN SOA ns.org. hostmaster.org. 1 3600 600 604800 300
@             IN NS  ns.org.
ns            IN A   127.0.0.3
www.wikipedia IN A   208.80.154.224
www.mozilla   IN A   44.236.72.93
";

/// An NSD configuration for one server at `addr`:53 serving `zones` (name, file), with
/// every file it keeps in `dir`: no database, no chroot, no privilege drop, no remote
/// control, IPv4 only.
pub fn nsd_conf(dir: &Path, tag: &str, addr: &str, zones: &[(&str, &str)]) -> String {
    let dir = dir.display();
    let mut conf = format!(
        "server:\n\
         \x20   ip-address: {addr}\n\
         \x20   port: 53\n\
         \x20   do-ip6: no\n\
         \x20   username: \"\"\n\
         \x20   chroot: \"\"\n\
         \x20   database: \"\"\n\
         \x20   zonesdir: \"{dir}\"\n\
         \x20   zonelistfile: \"{dir}/{tag}.zonelist\"\n\
         \x20   xfrdfile: \"{dir}/{tag}.xfrd\"\n\
         \x20   xfrdir: \"{dir}\"\n\
         \x20   pidfile: \"{dir}/{tag}.pid\"\n\
         \x20   server-count: 1\n\
         \x20   verbosity: 1\n\
         remote-control:\n\
         \x20   control-enable: no\n"
    );
    for (name, file) in zones {
        conf.push_str(&format!(
            "zone:\n    name: \"{name}\"\n    zonefile: \"{file}\"\n"
        ));
    }
    conf
}

/// Starts NSD in the foreground (`-d`) in `ns` with `conf` and waits until it answers
/// for `zone` (its SOA, authoritatively).
#[track_caller]
pub fn start_nsd(ns: &mut Netns, conf: &Path, addr: &str, zone: &str) {
    let mut nsd = ns.command(&sbin("nsd"));
    nsd.arg("-d").arg("-c").arg(conf);
    let index = ns.spawn(nsd);
    let server = SocketAddr::new(addr.parse().unwrap(), 53);
    ns.wait_ready(index, server, &[zone, "SOA", "+norecurse"], |r| {
        r.rcode == "NOERROR" && r.flag("aa") && r.answer.len() == 1
    });
}

#[test]
#[cfg_attr(
    any(missing_nsd, missing_dig, missing_netns),
    ignore = "needs nsd, dig, root and iproute2: scripts/ci-deps.sh nsd dig"
)]
fn dnsd_local_resolves_through_nsd_as_root_and_tld_servers_on_port_53() {
    if !(require_tool("nsd") && require_tool("dig")) {
        return;
    }
    let Some(mut ns) =
        Netns::new("dnsd_local_resolves_through_nsd_as_root_and_tld_servers_on_port_53")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    for (file, text) in [
        ("root.zone", ROOT_ZONE),
        ("com.zone", COM_ZONE),
        ("org.zone", ORG_ZONE),
    ] {
        std::fs::write(path.join(file), text).unwrap();
    }
    let root_conf = path.join("root.conf");
    std::fs::write(
        &root_conf,
        nsd_conf(path, "root", ROOT_NS, &[(".", "root.zone")]),
    )
    .unwrap();
    let tld_conf = path.join("tld.conf");
    std::fs::write(
        &tld_conf,
        nsd_conf(
            path,
            "tld",
            TLD_NS,
            &[("com", "com.zone"), ("org", "org.zone")],
        ),
    )
    .unwrap();
    start_nsd(&mut ns, &root_conf, ROOT_NS, ".");
    start_nsd(&mut ns, &tld_conf, TLD_NS, "com");

    let root = format!("{ROOT_NS}:53");
    let local = ns.dnsd(
        &[
            "local",
            "--port",
            "0",
            "--root",
            &root,
            "--upstream-protocol",
            "dns",
            "--log-dir",
            ".",
        ],
        path,
    );

    // The line protocol, mode I: referred by the root NSD to the TLD NSD on port 53.
    let replies = ns.client(
        local,
        "www.google.com I\ngithub.com I\nwww.mozilla.org I\nnosuch.com I\n\
         www.nosuch.zz I\nwww.google.com I\n",
    );
    assert_eq!(
        replies,
        [
            "0X01, default_local, 142.250.72.4",
            "0X01, default_local, 140.82.112.4",
            "0X01, default_local, 44.236.72.93",
            "0XFF, default_local, Host not found",
            "0XFF, default_local, Host not found",
            "0X00, default_local, 142.250.72.4",
        ]
    );

    // DNS, over UDP and TCP: A, AAAA, the CNAME chain, NXDOMAIN (a name, and a TLD the
    // root does not delegate) and NODATA (a type the name lacks, an empty non-terminal).
    for (transport, flag) in [("UDP", "+notcp"), ("TCP", "+tcp")] {
        let ask = |name: &str, qtype: &str| ns.dig(local, &[name, qtype, flag]);
        check(
            &ask("www.amazon.com", "A"),
            transport,
            "NOERROR",
            &["www.amazon.com. A 205.251.242.103"],
        );
        check(
            &ask("www.v6.com", "AAAA"),
            transport,
            "NOERROR",
            &["www.v6.com. AAAA 2001:db8::6"],
        );
        check(
            &ask("google.com", "A"),
            transport,
            "NOERROR",
            &[
                "google.com. CNAME www.google.com.",
                "www.google.com. A 142.250.72.4",
            ],
        );
        check(
            &ask("www.wikipedia.org", "A"),
            transport,
            "NOERROR",
            &["www.wikipedia.org. A 208.80.154.224"],
        );
        check_negative(&ask("nope.com", "A"), transport, "NXDOMAIN", "com.");
        check_negative(&ask("www.example.zz", "A"), transport, "NXDOMAIN", ".");
        check_negative(&ask("www.amazon.com", "AAAA"), transport, "NOERROR", "com.");
        check_negative(&ask("corp.com", "A"), transport, "NOERROR", "com.");
    }
}
