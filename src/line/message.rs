//! The meaning of a line: typed requests and replies, parsed from and printed to the
//! `TAG, NAME, MODE` / `CODE, SERVER, TEXT` line format that every hop speaks.
//!
//! Framing (how bytes become lines) lives in [`crate::line::frame`]; this module only sees
//! whole lines without their line end.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::model::name::{parse_tld, Name, NameError};

/// The greeting the local server sends after a client's id line.
pub const GREETING: &str = "You are connected to the Server";
/// The line that ends a client session.
pub const QUIT: &str = "q";

/// How a name is to be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `R`: the root asks the TLD server itself and hands the answer back.
    Recursive,
    /// `I`: the root only refers the asker to the TLD server.
    Iterative,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Recursive => "R",
            Mode::Iterative => "I",
        }
    }
}

impl FromStr for Mode {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "R" | "r" => Ok(Mode::Recursive),
            "I" | "i" => Ok(Mode::Iterative),
            _ => Err(ProtocolError::BadMode),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request: `TAG, NAME, MODE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Any token without a comma, whitespace or control character; echoed upstream.
    pub tag: String,
    pub name: Name,
    pub mode: Mode,
}

/// Why a line is not a valid request or reply. Every variant is answered `0XEE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("expected 3 comma-separated fields, found {0}")]
    FieldCount(usize),
    #[error("bad tag (empty, or holds whitespace or control characters)")]
    BadTag,
    #[error("bad name: {0}")]
    BadName(#[from] NameError),
    #[error("mode is neither R nor I")]
    BadMode,
    #[error("unknown reply code")]
    BadCode,
    #[error("bad server field")]
    BadServer,
}

/// Splits a line into exactly three comma-separated fields, trimmed of spaces and tabs.
fn three_fields(line: &[u8]) -> Result<[&str; 3], ProtocolError> {
    let line = std::str::from_utf8(line).map_err(|_| ProtocolError::NotUtf8)?;
    let mut it = line.splitn(4, ',');
    let (Some(a), Some(b), Some(c), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(ProtocolError::FieldCount(line.split(',').count()));
    };
    Ok([trim(a), trim(b), trim(c)])
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// A token: non-empty, no comma, whitespace or control character.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c == ',' || c.is_whitespace() || c.is_control())
}

impl Request {
    pub fn new(tag: impl Into<String>, name: Name, mode: Mode) -> Request {
        Request {
            tag: tag.into(),
            name,
            mode,
        }
    }

    /// Parses one request line (without its line end).
    pub fn parse(line: &[u8]) -> Result<Request, ProtocolError> {
        let [tag, name, mode] = three_fields(line)?;
        if !is_token(tag) {
            return Err(ProtocolError::BadTag);
        }
        let mode = mode.parse()?;
        let name = Name::parse(name)?;
        Ok(Request {
            tag: tag.to_owned(),
            name,
            mode,
        })
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}, {}", self.tag, self.name, self.mode)
    }
}

/// The reply codes of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// `0X00`: answered from the local server's cache.
    Cached,
    /// `0X01`: resolved by the hierarchy, or authoritatively by a TLD server.
    Resolved,
    /// `0X02`: a referral from the root, in mode I.
    Referral,
    /// `0XFF`: host not found.
    NotFound,
    /// `0XEE`: invalid format.
    Invalid,
    /// `0XFE`: server failure (an upstream could not be reached, timed out or answered
    /// nonsense), or the server is busy.
    Failure,
}

impl Code {
    pub const ALL: [Code; 6] = [
        Code::Cached,
        Code::Resolved,
        Code::Referral,
        Code::NotFound,
        Code::Invalid,
        Code::Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Cached => "0X00",
            Code::Resolved => "0X01",
            Code::Referral => "0X02",
            Code::NotFound => "0XFF",
            Code::Invalid => "0XEE",
            Code::Failure => "0XFE",
        }
    }
}

impl FromStr for Code {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or(ProtocolError::BadCode)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fixed texts of the protocol.
pub const NOT_FOUND: &str = "Host not found";
pub const INVALID: &str = "Invalid format";
pub const FAILURE: &str = "Server failure";
pub const BUSY: &str = "Server busy";
/// The reply to a client the server does not answer (not in the local server's
/// `--allow`), with code `0XFE`.
pub const ACCESS_REFUSED: &str = "Access refused";
pub const INVALID_CLIENT_ID: &str = "Invalid client id";

/// One reply: `CODE, SERVER, TEXT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    pub server: String,
    pub text: String,
}

impl Reply {
    pub fn new(code: Code, server: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            server: server.to_owned(),
            text: text.into(),
        }
    }

    pub fn address(code: Code, server: &str, addr: IpAddr) -> Reply {
        Reply::new(code, server, addr.to_string())
    }

    pub fn not_found(server: &str) -> Reply {
        Reply::new(Code::NotFound, server, NOT_FOUND)
    }

    pub fn invalid(server: &str) -> Reply {
        Reply::new(Code::Invalid, server, INVALID)
    }

    pub fn failure(server: &str) -> Reply {
        Reply::new(Code::Failure, server, FAILURE)
    }

    pub fn referral(server: &str, referral: &LineReferral) -> Reply {
        Reply::new(Code::Referral, server, referral.to_string())
    }

    /// Parses one reply line (without its line end).
    pub fn parse(line: &[u8]) -> Result<Reply, ProtocolError> {
        let [code, server, text] = three_fields(line)?;
        let code = code.parse()?;
        if !is_token(server) {
            return Err(ProtocolError::BadServer);
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(ProtocolError::BadTag);
        }
        Ok(Reply {
            code,
            server: server.to_owned(),
            text: text.to_owned(),
        })
    }

    /// The address a `0X00`/`0X01` reply carries.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.code {
            Code::Cached | Code::Resolved => self.text.parse().ok(),
            _ => None,
        }
    }

    /// Appends the reply and its `\n` to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        self.write_body(out);
        out.push(b'\n');
    }

    /// Appends the reply, without a line end, to `out`.
    pub fn write_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.code.as_str().as_bytes());
        out.extend_from_slice(b", ");
        out.extend_from_slice(self.server.as_bytes());
        out.extend_from_slice(b", ");
        out.extend_from_slice(self.text.as_bytes());
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}, {}", self.code, self.server, self.text)
    }
}

/// The text of a `0X02` referral: `ZONE HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineReferral {
    /// The zone referred to: a TLD (the root's referrals), or a zone below one (a TLD
    /// server's, to a second-level zone's server: `example.com`).
    pub tld: String,
    pub addr: SocketAddr,
}

impl FromStr for LineReferral {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut it = s.split_whitespace();
        let (Some(tld), Some(addr), None) = (it.next(), it.next(), it.next()) else {
            return Err(ProtocolError::FieldCount(s.split_whitespace().count()));
        };
        let zone = match parse_tld(tld) {
            Ok(tld) => tld,
            Err(e) => Name::parse(tld)
                .map(|name| name.as_str().to_owned())
                .map_err(|_| e)?,
        };
        Ok(LineReferral {
            tld: zone,
            addr: addr.parse().map_err(|_| ProtocolError::BadServer)?,
        })
    }
}

impl fmt::Display for LineReferral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.tld, self.addr)
    }
}

/// The longest client id the local server accepts.
pub const MAX_CLIENT_ID: usize = 64;

/// Checks a client id: 1–64 letters, digits, `.`, `_` or `-`, not starting with `.`.
/// The id names the client's log file, so this is what keeps that file inside the log
/// directory.
pub fn valid_client_id(id: &[u8]) -> Option<&str> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id[0] != b'.'
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        std::str::from_utf8(id).ok()
    } else {
        None
    }
}

/// The name a server replies under (`0X00, NAME, ...`): not empty, and without commas
/// or spaces, which would run into the other fields of its replies. [`ServerName::new`]
/// is the one check, whether the name comes from `--name` or a lab file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerName(String);

/// Why a name cannot be a server's (see [`ServerName`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be non-empty, without commas or spaces")]
pub struct BadServerName;

impl ServerName {
    pub fn new(name: &str) -> Result<ServerName, BadServerName> {
        if name.is_empty() || name.contains([',', ' ', '\t']) {
            return Err(BadServerName);
        }
        Ok(ServerName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_with_spaces_and_lowercase_mode() {
        let r = Request::parse(b"  7 ,WWW.Google.com , i").unwrap();
        assert_eq!(r.tag, "7");
        assert_eq!(r.name.as_str(), "www.google.com");
        assert_eq!(r.mode, Mode::Iterative);
        assert_eq!(r.to_string(), "7, www.google.com, I");
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(Request::parse(b""), Err(ProtocolError::FieldCount(1)));
        assert_eq!(
            Request::parse(b"a,b,c,d,e"),
            Err(ProtocolError::FieldCount(5))
        );
        assert_eq!(
            Request::parse(b"1, google.com, X"),
            Err(ProtocolError::BadMode)
        );
        assert_eq!(Request::parse(b",google.com,R"), Err(ProtocolError::BadTag));
        assert_eq!(
            Request::parse(b"1, \xff.com, R"),
            Err(ProtocolError::NotUtf8)
        );
    }

    #[test]
    fn reply_round_trip() {
        let r = Reply::parse(b"0X02, root, com 127.0.0.1:5678").unwrap();
        assert_eq!(r.code, Code::Referral);
        let referral: LineReferral = r.text.parse().unwrap();
        assert_eq!(referral.addr, "127.0.0.1:5678".parse().unwrap());
        assert_eq!(r.to_string(), "0X02, root, com 127.0.0.1:5678");
    }

    #[test]
    fn client_ids() {
        assert_eq!(valid_client_id(b"alice"), Some("alice"));
        assert_eq!(valid_client_id(b"a.b_c-1"), Some("a.b_c-1"));
        for bad in [&b""[..], b"..", b"../x", b"/etc/passwd", b"a/b", b".hidden"] {
            assert_eq!(valid_client_id(bad), None, "{bad:?}");
        }
        assert_eq!(valid_client_id(&[b'a'; 65]), None);
    }

    #[test]
    fn server_names() {
        assert_eq!(ServerName::new("local-1").unwrap().as_str(), "local-1");
        for bad in ["", "a,b", "a b", "a\tb"] {
            assert_eq!(ServerName::new(bad), Err(BadServerName), "{bad:?}");
        }
    }
}
