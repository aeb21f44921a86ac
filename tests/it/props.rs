//! Every parser under arbitrary input (proptest): request and reply lines, names,
//! referrals, client ids, zones and root tables in both formats. None may panic, and
//! whatever parses prints back to the same value.

use std::net::SocketAddr;
use std::path::Path;

use dnsd::line::message::{valid_client_id, LineReferral, Reply, Request};
use dnsd::model::name::Name;
use dnsd::ops::querylog::escape;
use dnsd::zone::{Format, RootTable, Zone};
use proptest::prelude::*;

/// Few enough cases to keep CI fast, enough to find the usual mistakes.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A label that is often valid, sometimes not (hyphens at the edges, odd characters).
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9][a-zA-Z0-9-]{0,8}[a-zA-Z0-9]",
        2 => "[a-zA-Z]{1,3}",
        1 => "[-a-z0-9_.:/ ]{0,6}",
        1 => "[a-z]{60,66}",
    ]
}

/// Name-like strings: labels joined by dots, maybe a trailing dot.
fn nameish() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..6), any::<bool>()).prop_map(|(labels, dot)| {
        let mut s = labels.join(".");
        if dot {
            s.push('.');
        }
        s
    })
}

/// Spaces and tabs, as peers put them around fields.
fn pad() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

/// Request-like lines: `TAG, NAME, MODE` with noise around and in the fields.
fn requestish() -> impl Strategy<Value = String> {
    (
        pad(),
        prop_oneof![4 => "[a-zA-Z0-9_-]{1,8}", 1 => "[ -~\t\u{0}-\u{1f}é]{0,6}"],
        pad(),
        nameish(),
        pad(),
        prop_oneof![4 => "[RrIi]", 1 => "[ -~]{0,3}"],
        pad(),
    )
        .prop_map(|(a, tag, b, name, c, mode, d)| format!("{a}{tag}{b},{c}{name},{mode}{d}"))
}

/// Reply-like lines: `CODE, SERVER, TEXT`.
fn replyish() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            4 => "0[Xx](00|01|02|FF|EE|FE|ff|ee|fe)",
            1 => "[0-9A-Zx]{0,5}",
        ],
        pad(),
        prop_oneof![4 => "[a-z_]{1,12}", 1 => "[ -~\t]{0,4}"],
        pad(),
        prop_oneof![
            2 => "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
            1 => "[a-z]{2,4} 127\\.0\\.0\\.1:[0-9]{1,5}",
            1 => "[ -~\t\u{7f}\u{a0}\u{85}é]{0,20}",
        ],
    )
        .prop_map(|(code, a, server, b, text)| format!("{code},{a}{server},{b}{text}"))
}

/// IP address text: v4, v6, or junk.
fn addrish() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        2 => "[0-9a-f]{0,4}::[0-9a-f]{0,4}",
        1 => "[ -~]{0,8}",
    ]
}

/// Legacy zone text: `NAME ADDR` lines with comments, blanks and junk.
fn legacy_zone() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        6 => (nameish(), "[ \t]{1,3}", addrish()).prop_map(|(n, s, a)| format!("{n}{s}{a}")),
        1 => "#[ -~]{0,10}",
        1 => "[ \t]{0,3}",
        1 => "[ -~\t]{0,20}",
    ];
    prop::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

/// TOML zone text: a `[records]` table of quoted names, sometimes broken.
fn toml_zone() -> impl Strategy<Value = String> {
    let entry = (nameish(), addrish()).prop_map(|(n, a)| {
        format!(
            "\"{}\" = \"{}\"",
            n.replace(['"', '\\'], ""),
            a.replace(['"', '\\'], "")
        )
    });
    prop_oneof![
        6 => prop::collection::vec(entry, 0..6)
            .prop_map(|e| format!("[records]\n{}\n", e.join("\n"))),
        1 => "[ -~\n\t]{0,60}",
    ]
}

/// Legacy root table text: `TLD HOST PORT` lines.
fn legacy_table() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        6 => (label(), addrish(), "[0-9]{1,6}").prop_map(|(t, a, p)| format!("{t} {a} {p}")),
        1 => "#[ -~]{0,10}",
        1 => "[ -~\t]{0,20}",
    ];
    prop::collection::vec(line, 0..6).prop_map(|lines| lines.join("\n"))
}

/// TOML root table text: `[tlds]` with `tld = "HOST:PORT"`.
fn toml_table() -> impl Strategy<Value = String> {
    let entry = (
        "[a-zA-Z0-9]{1,6}",
        prop_oneof![
            3 => "127\\.0\\.0\\.[0-9]{1,3}:[0-9]{1,6}",
            1 => "\\[::1\\]:[0-9]{1,5}",
            1 => "[ -~]{0,8}",
        ],
    )
        .prop_map(|(t, a)| format!("{t} = \"{}\"", a.replace(['"', '\\'], "")));
    prop_oneof![
        6 => prop::collection::vec(entry, 0..6)
            .prop_map(|e| format!("[tlds]\n{}\n", e.join("\n"))),
        1 => "[ -~\n\t]{0,60}",
    ]
}

fn check_request(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(r) = Request::parse(bytes) {
        let printed = r.to_string();
        prop_assert_eq!(Request::parse(printed.as_bytes()), Ok(r));
    }
    Ok(())
}

fn check_reply(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(r) = Reply::parse(bytes) {
        let printed = r.to_string();
        let mut written = Vec::new();
        r.write_line(&mut written);
        prop_assert_eq!(written, format!("{printed}\n").into_bytes());
        prop_assert_eq!(Reply::parse(printed.as_bytes()), Ok(r));
    }
    Ok(())
}

fn check_name(s: &str) -> Result<(), TestCaseError> {
    if let Ok(n) = Name::parse(s) {
        prop_assert_eq!(Name::parse(n.as_str()), Ok(n.clone()));
        prop_assert!(n.as_str().len() <= dnsd::model::name::MAX_NAME);
        prop_assert_eq!(n.as_str(), n.as_str().to_ascii_lowercase());
    }
    Ok(())
}

fn check_referral(s: &str) -> Result<(), TestCaseError> {
    if let Ok(r) = s.parse::<LineReferral>() {
        prop_assert_eq!(r.to_string().parse::<LineReferral>(), Ok(r));
    }
    Ok(())
}

fn check_client_id(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Some(id) = valid_client_id(bytes) {
        prop_assert!((1..=64).contains(&id.len()));
        prop_assert!(!id.starts_with('.'));
        // The log file it names stays in the log directory's clients/.
        let file = Path::new("logs/clients").join(format!("{id}.log"));
        prop_assert_eq!(file.parent(), Some(Path::new("logs/clients")));
        prop_assert_eq!(file.components().count(), 3);
    }
    Ok(())
}

/// A zone printed back in both formats parses to the same records.
fn check_zone(text: &str, format: Format) -> Result<(), TestCaseError> {
    let Ok(zone) = Zone::parse(Path::new("z"), text, format) else {
        return Ok(());
    };
    let records = zone.sorted();
    let legacy: String = records.iter().map(|(n, a)| format!("{n} {a}\n")).collect();
    let toml = format!(
        "[records]\n{}",
        records
            .iter()
            .map(|(n, a)| format!("\"{n}\" = \"{a}\"\n"))
            .collect::<String>()
    );
    for (text, format) in [(legacy, Format::Legacy), (toml, Format::Toml)] {
        let again = Zone::parse(Path::new("z"), &text, format);
        prop_assert!(again.is_ok(), "{:?} does not parse back: {:?}", text, again);
        let again = again.unwrap();
        prop_assert_eq!(again.sorted(), records.clone());
    }
    Ok(())
}

/// A root table printed back in both formats parses to the same entries.
fn check_table(text: &str, format: Format) -> Result<(), TestCaseError> {
    let Ok(table) = RootTable::parse(Path::new("r"), text, format) else {
        return Ok(());
    };
    let entries: Vec<(String, SocketAddr)> = table.iter().map(|(t, a)| (t.to_owned(), a)).collect();
    let legacy: String = entries
        .iter()
        .map(|(t, a)| format!("{t} {} {}\n", a.ip(), a.port()))
        .collect();
    let toml = format!(
        "[tlds]\n{}",
        entries
            .iter()
            .map(|(t, a)| format!("{t} = \"{a}\"\n"))
            .collect::<String>()
    );
    for (text, format) in [(legacy, Format::Legacy), (toml, Format::Toml)] {
        let again = RootTable::parse(Path::new("r"), &text, format);
        prop_assert!(again.is_ok(), "{:?} does not parse back: {:?}", text, again);
        let again: Vec<(String, SocketAddr)> = again
            .unwrap()
            .iter()
            .map(|(t, a)| (t.to_owned(), a))
            .collect();
        prop_assert_eq!(&again, &entries);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn request_parse_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        check_request(&bytes)?;
    }

    #[test]
    fn request_parse_requestish_lines(line in requestish()) {
        check_request(line.as_bytes())?;
    }

    #[test]
    fn request_parse_valid_requests_round_trip(
        tag in "[a-zA-Z0-9_-]{1,8}",
        name in "[a-z]{1,8}\\.[a-z]{2,5}",
        mode in "[RrIi]",
    ) {
        let line = format!("{tag}, {name}, {mode}");
        let r = Request::parse(line.as_bytes());
        prop_assert!(r.is_ok(), "{:?}: {:?}", line, r);
        check_request(line.as_bytes())?;
    }

    #[test]
    fn reply_parse_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        check_reply(&bytes)?;
    }

    #[test]
    fn reply_parse_replyish_lines(line in replyish()) {
        check_reply(line.as_bytes())?;
    }

    #[test]
    fn name_parse_arbitrary_strings(s in "\\PC{0,80}") {
        check_name(&s)?;
    }

    #[test]
    fn name_parse_nameish_strings(s in nameish()) {
        check_name(&s)?;
    }

    #[test]
    fn referral_parse_arbitrary(s in "\\PC{0,40}", t in label(), a in addrish(), p in "[0-9]{1,6}") {
        check_referral(&s)?;
        check_referral(&format!("{t} {a}:{p}"))?;
        check_referral(&format!("{t} [{a}]:{p}"))?;
    }

    #[test]
    fn client_id_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        check_client_id(&bytes)?;
    }

    #[test]
    fn client_id_idish(s in "[a-zA-Z0-9._/\\-]{0,70}") {
        check_client_id(s.as_bytes())?;
    }

    #[test]
    fn zone_parse_arbitrary_text(s in "\\PC{0,120}") {
        check_zone(&s, Format::Legacy)?;
        check_zone(&s, Format::Toml)?;
    }

    #[test]
    fn zone_parse_legacy_zoneish(s in legacy_zone()) {
        check_zone(&s, Format::Legacy)?;
    }

    #[test]
    fn zone_parse_toml_zoneish(s in toml_zone()) {
        check_zone(&s, Format::Toml)?;
    }

    #[test]
    fn root_table_parse_arbitrary_text(s in "\\PC{0,120}") {
        check_table(&s, Format::Legacy)?;
        check_table(&s, Format::Toml)?;
    }

    #[test]
    fn root_table_parse_legacy_tableish(s in legacy_table()) {
        check_table(&s, Format::Legacy)?;
    }

    #[test]
    fn root_table_parse_toml_tableish(s in toml_table()) {
        check_table(&s, Format::Toml)?;
    }

    #[test]
    fn escape_never_starts_a_line(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        let escaped = escape(&bytes);
        prop_assert!(!escaped.contains(['\n', '\r']), "{:?}", escaped);
        prop_assert!(!escaped.chars().any(|c| c.is_control()), "{:?}", escaped);
    }
}
