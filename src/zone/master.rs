//! RFC 1035 master files (`.zone`), read with hickory-proto's zone-file parser into the
//! record store.
//!
//! hickory's parser reads a whole file into one map of record sets before giving any
//! back, and says nothing of line numbers. So the text is cut into entries here (an
//! entry is a line, or lines joined by parentheses; a cut only looks at parentheses,
//! quotes and comments, the parser does the rest) and given to the parser a few dozen
//! entries at a time, each batch headed by the `$ORIGIN` and `$TTL` in force there.
//! Each batch's records go into the store as they come, in its compact form, so a
//! million-record file never exists as hickory records all at once. When a batch fails,
//! its entries are parsed one at a time, so every problem is reported as `FILE:LINE`.
//!
//! The zone's origin is the owner of its SOA record; a file must give `$ORIGIN` (or use
//! absolute names) unless the caller knows the origin (a TLD server's TLD). `$INCLUDE`
//! is refused: a zone is one file.

use std::path::Path;

use hickory_proto::rr as hrr;
use hickory_proto::serialize::txt::Parser;

use super::files::FileError;
use super::store::{ZoneBuilder, ZoneData};
use crate::dns::{model_name, model_record};
use crate::model::name::Name;

/// The owner of the record that carries the last TTL from one parse to the next (see
/// `Reader::parse`); no zone holds it.
const CARRIER: &str = "dnsd--ttl--carrier.";

/// How many entries one parse is given at once: small, as the parser's map of record
/// sets costs more per record the more it holds (a million records load in about
/// 1.9 s of CPU with 32, 2.4 s with 256, 2.5 s with 1024).
const BATCH: usize = 32;

/// Whether `path` names a master file: its extension is `.zone`.
pub fn is_master(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("zone"))
}

/// Reads a master file; `origin` is the zone's name when the caller knows it (the file
/// must then be that zone). Stops at the first problem.
pub fn load(path: &Path, origin: Option<&Name>) -> Result<ZoneData, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        path: path.to_owned(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text, origin).map_err(|mut all| all.swap_remove(0))
}

/// Parses a master file's text (`path` names it in messages) and returns the zone, or
/// every problem in line order (the first is what the servers report; `dnsd check`
/// lists them all).
pub fn parse(path: &Path, text: &str, origin: Option<&Name>) -> Result<ZoneData, Vec<FileError>> {
    // A problem found in a batch's records is reported at the batch's first line: a
    // file with problems is read again an entry at a time, for the lines at fault.
    read(path, text, origin, BATCH).or_else(|_| read(path, text, origin, 1))
}

/// [`parse`], giving the parser `batch` entries at a time.
fn read(
    path: &Path,
    text: &str,
    origin: Option<&Name>,
    batch: usize,
) -> Result<ZoneData, Vec<FileError>> {
    let mut reader = Reader {
        names_hint: text.len() / 20,
        owner_word: None,
        batch_size: batch,
        path,
        origin: origin.map(|o| format!("{o}.").replace("..", ".")),
        ttl: None,
        last_ttl: None,
        owner: None,
        zone: origin.map(|o| ZoneBuilder::new(o.clone())),
        pending: Vec::new(),
        problems: Vec::new(),
        batch: String::new(),
        batch_entries: Vec::new(),
    };
    if let Some(zone) = &mut reader.zone {
        zone.reserve(reader.names_hint);
    }
    for entry in entries(text) {
        reader.entry(entry);
    }
    reader.flush();

    let Reader {
        zone,
        pending,
        mut problems,
        ..
    } = reader;
    let result = match zone {
        Some(zone) if pending.is_empty() => zone.finish(path),
        _ => Err(vec![problem(
            path,
            0,
            "no SOA record: a zone starts with its SOA",
        )]),
    };
    match result {
        Ok(zone) if problems.is_empty() => Ok(zone),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            problems.sort_by_key(|e| if e.line == 0 { usize::MAX } else { e.line });
            Err(problems)
        }
    }
}

fn problem(path: &Path, line: usize, message: impl Into<String>) -> FileError {
    FileError {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

/// One entry of a master file: where it starts and its text (continuation lines
/// included, comments kept: the parser drops them).
struct Entry<'a> {
    line: usize,
    text: &'a str,
}

/// The file's entries, blank and comment-only lines left out.
fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    let mut lines = text.split_inclusive('\n').enumerate().peekable();
    std::iter::from_fn(move || loop {
        let (i, first) = lines.next()?;
        let start = first.as_ptr() as usize - text.as_ptr() as usize;
        let mut end = start + first.len();
        let mut depth = parens(first, 0);
        while depth > 0 {
            let Some((_, next)) = lines.next() else { break };
            end += next.len();
            depth = parens(next, depth);
        }
        let entry = &text[start..end];
        if content(entry) {
            return Some(Entry {
                line: i + 1,
                text: entry,
            });
        }
    })
}

/// The parenthesis depth after `line`, from `depth` before it: parentheses inside quotes
/// or comments, or escaped, do not count.
fn parens(line: &str, mut depth: usize) -> usize {
    let mut quoted = false;
    let mut bytes = line.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next();
            }
            b'"' => quoted = !quoted,
            b';' if !quoted => break,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth
}

/// Whether an entry holds anything but blanks and comments.
fn content(entry: &str) -> bool {
    entry
        .lines()
        .any(|l| !l.trim_start().is_empty() && !l.trim_start().starts_with(';'))
}

/// Reading a master file: the state carried from batch to batch.
struct Reader<'a> {
    path: &'a Path,
    /// About how many names the file holds (a name a line): room made at once.
    names_hint: usize,
    /// The owner of the last entry that named one, as written (made absolute only when
    /// an entry without an owner needs it).
    owner_word: Option<&'a str>,
    /// How many entries the parser is given at once.
    batch_size: usize,
    /// `$ORIGIN`, absolute (with its trailing dot).
    origin: Option<String>,
    /// `$TTL`, when the file set one.
    ttl: Option<u32>,
    /// The TTL of the last record read (a record without one takes it, when there is
    /// no `$TTL`: RFC 1035 5.1).
    last_ttl: Option<u32>,
    /// The owner of the last entry that named one, absolute, when `owner_word` was
    /// written under an earlier `$ORIGIN`.
    owner: Option<String>,
    /// The zone, once its origin is known.
    zone: Option<ZoneBuilder>,
    /// Records read before the SOA named the origin.
    pending: Vec<(usize, crate::model::Record)>,
    problems: Vec<FileError>,
    /// The entries of the batch being gathered: their text, and each one's line.
    batch: String,
    batch_entries: Vec<(usize, usize)>,
}

impl<'a> Reader<'a> {
    fn entry(&mut self, entry: Entry<'a>) {
        let text = entry.text;
        if text.starts_with('$') {
            self.flush();
            self.directive(entry.line, text);
            return;
        }
        let named = !text.starts_with([' ', '\t']);
        if is_generic(text) {
            // RFC 3597's generic form, which hickory's parser does not take: read here.
            self.flush();
            if named {
                self.owner_word = Some(first_word(text));
            }
            match self.generic(text, named) {
                Ok(record) => self.add(entry.line, vec![record]),
                Err(e) => self.fail(entry.line, e),
            }
            return;
        }
        // A batch is cut only before an entry that names its owner, and is one entry
        // long while no `$TTL` is set (the last TTL is then carried entry by entry).
        if named && (self.batch_entries.len() >= self.batch_size || self.ttl.is_none()) {
            self.flush();
        }
        if named {
            self.owner_word = Some(first_word(text));
        }
        if self.batch_entries.is_empty() && !named {
            // The owner of the entry before, written out for the parser.
            if let Some(owner) = self.owner() {
                self.batch.push_str(&owner);
            }
        }
        self.batch_entries.push((entry.line, self.batch.len()));
        self.batch.push_str(text);
        if !text.ends_with('\n') {
            self.batch.push('\n');
        }
    }

    /// An entry in RFC 3597's generic form: `[OWNER] [TTL] [CLASS] TYPE \# LEN HEX...`
    /// (the type by name or as `TYPEn`), its data decoded as the type's wire form.
    fn generic(&self, text: &str, named: bool) -> Result<hrr::Record, String> {
        let words: String = text
            .lines()
            .map(|l| l.split(';').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
            .replace(['(', ')'], " ");
        let mut words = words.split_whitespace().peekable();
        if named {
            words.next();
        }
        let owner = self.owner().ok_or("no owner name")?;
        let name = hrr::Name::from_ascii(&owner).map_err(|e| format!("bad name {owner:?}: {e}"))?;
        let mut ttl = self.ttl.or(self.last_ttl);
        let mut class = hrr::DNSClass::IN;
        let rtype = loop {
            let word = words.next().ok_or("no record type")?;
            if let Ok(t) = hickory_proto::serialize::txt::parse_ttl(word) {
                ttl = Some(t);
            } else if let Ok(c) = word.to_ascii_uppercase().parse::<hrr::DNSClass>() {
                class = c;
            } else {
                break record_type(word)?;
            }
        };
        let ttl = ttl.ok_or("record ttl not specified")?;
        if words.next() != Some("\\#") {
            return Err("expected \\# after the type (RFC 3597)".into());
        }
        let len: u16 = words
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or("bad length after \\#")?;
        let hex: String = words.collect();
        let bytes = decode_hex(&hex).ok_or_else(|| format!("bad hex data {hex:?}"))?;
        if bytes.len() != usize::from(len) {
            return Err(format!(
                "\\# says {len} bytes, the data has {}",
                bytes.len()
            ));
        }
        let mut decoder = hickory_proto::serialize::binary::BinDecoder::new(&bytes);
        let data = hrr::RData::read(
            &mut decoder,
            rtype,
            hickory_proto::serialize::binary::Restrict::new(len),
        )
        .map_err(|e| format!("bad {rtype} data: {e}"))?;
        let mut record = hrr::Record::from_rdata(name, ttl, data);
        record.dns_class = class;
        Ok(record)
    }

    /// `$ORIGIN`, `$TTL`; `$INCLUDE` and anything else is a problem.
    fn directive(&mut self, line: usize, text: &str) {
        let text = text.split(';').next().unwrap_or("");
        let mut words = text.split_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        let value = words.next();
        match (keyword.as_str(), value) {
            ("$ORIGIN", Some(origin)) => match self.absolute(origin) {
                // The owner so far keeps the origin it was written under.
                Some(origin) if self.owner_word.is_some() => {
                    self.owner = self.owner();
                    self.owner_word = None;
                    self.origin = Some(origin);
                }
                Some(origin) => self.origin = Some(origin),
                None => self.fail(line, format!("bad $ORIGIN {origin:?}")),
            },
            ("$TTL", Some(ttl)) => match hickory_proto::serialize::txt::parse_ttl(ttl) {
                Ok(ttl) => self.ttl = Some(ttl),
                Err(_) => self.fail(line, format!("bad $TTL {ttl:?}")),
            },
            ("$INCLUDE", _) => self.fail(line, "$INCLUDE is not supported: a zone is one file"),
            (other, _) => self.fail(line, format!("bad directive {other}")),
        }
    }

    /// The owner of the last entry that named one, absolute.
    fn owner(&self) -> Option<String> {
        match self.owner_word {
            Some(word) => self.absolute(word),
            None => self.owner.clone(),
        }
    }

    /// A name as written, made absolute against `$ORIGIN` (`@` is the origin).
    fn absolute(&self, name: &str) -> Option<String> {
        if name == "@" {
            return self.origin.clone();
        }
        if name.ends_with('.') && !name.ends_with("\\.") {
            return Some(name.to_owned());
        }
        let origin = self.origin.as_deref()?;
        Some(if origin == "." {
            format!("{name}.")
        } else {
            format!("{name}.{origin}")
        })
    }

    fn fail(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(problem(self.path, line, message));
    }

    /// Parses the batch gathered; when it fails, each of its entries alone, to find the
    /// lines at fault.
    fn flush(&mut self) {
        if self.batch_entries.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let entries = std::mem::take(&mut self.batch_entries);
        match self.parse(&batch) {
            Ok(records) => {
                let line = entries[0].0;
                self.add(line, records);
            }
            Err(_) if entries.len() > 1 => {
                for (i, &(line, start)) in entries.iter().enumerate() {
                    let end = entries.get(i + 1).map_or(batch.len(), |e| e.1);
                    let mut one = String::new();
                    let text = &batch[start..end];
                    if i > 0 && text.starts_with([' ', '\t']) {
                        // The owner of the entry before in this batch.
                        if let Some(owner) = self.owner_before(&batch, &entries[..i]) {
                            one.push_str(&owner);
                        }
                    }
                    one.push_str(text);
                    match self.parse(&one) {
                        Ok(records) => self.add(line, records),
                        Err(e) => self.fail(line, e),
                    }
                }
            }
            Err(e) => self.fail(entries[0].0, e),
        }
    }

    /// The owner named last among `entries` of `batch`, absolute.
    fn owner_before(&self, batch: &str, entries: &[(usize, usize)]) -> Option<String> {
        entries.iter().rev().find_map(|&(_, start)| {
            let text = &batch[start..];
            (!text.starts_with([' ', '\t']))
                .then(|| self.absolute(first_word(text)))
                .flatten()
        })
    }

    /// Runs hickory's parser over `text`, headed by the `$ORIGIN` and TTL in force.
    fn parse(&self, text: &str) -> Result<Vec<hrr::Record>, String> {
        let mut input = String::with_capacity(text.len() + 64);
        if let Some(origin) = &self.origin {
            input.push_str(&format!("$ORIGIN {origin}\n"));
        }
        match (self.ttl, self.last_ttl) {
            (Some(ttl), _) => input.push_str(&format!("$TTL {ttl}\n")),
            // No `$TTL`: a record without a TTL takes the last one. The parser keeps
            // that within one parse; this carrier (dropped below) gives it across.
            (None, Some(last)) => input.push_str(&format!("{CARRIER} {last} IN A 0.0.0.0\n")),
            (None, None) => {}
        }
        input.push_str(text);
        // Without `$ORIGIN`, names must be absolute; the parser wants an origin anyway.
        let (_, sets) = Parser::new(input, None, Some(hrr::Name::root()))
            .parse()
            .map_err(|e| e.to_string())?;
        Ok(sets
            .into_values()
            .flat_map(|set| set.into_parts().records)
            .filter(|r| !r.name.to_ascii().eq_ignore_ascii_case(CARRIER))
            .collect())
    }

    /// Adds the records of entries from `line` on to the zone.
    fn add(&mut self, line: usize, records: Vec<hrr::Record>) {
        for record in records {
            self.last_ttl = Some(record.ttl);
            if record.dns_class != hrr::DNSClass::IN {
                self.fail(line, format!("class {} is not IN", record.dns_class));
                continue;
            }
            let Some(model) = model_record(&record) else {
                self.fail(
                    line,
                    format!("{} records cannot be served", record.record_type()),
                );
                continue;
            };
            match &mut self.zone {
                Some(zone) => zone.add(line, model),
                None if record.record_type() == hrr::RecordType::SOA => {
                    let mut zone = ZoneBuilder::new(model_name(&record.name));
                    zone.reserve(self.names_hint);
                    zone.add(line, model);
                    for (line, r) in std::mem::take(&mut self.pending) {
                        zone.add(line, r);
                    }
                    self.zone = Some(zone);
                }
                None => self.pending.push((line, model)),
            }
        }
    }
}

/// Whether an entry's data is in RFC 3597's generic form (a `\#` word).
fn is_generic(text: &str) -> bool {
    text.contains("\\#")
        && text.lines().any(|l| {
            l.split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .any(|w| w == "\\#")
        })
}

/// A record type by name (`MX`) or number (`TYPE99`).
fn record_type(word: &str) -> Result<hrr::RecordType, String> {
    let upper = word.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE") {
        if let Ok(n) = n.parse::<u16>() {
            return Ok(hrr::RecordType::from(n));
        }
    }
    upper
        .parse::<hrr::RecordType>()
        .map_err(|_| format!("unknown record type {word:?}"))
}

/// Hex digits (any case) as bytes; `None` if odd in number or not hex.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The first word of an entry: its owner, when it names one.
fn first_word(text: &str) -> &str {
    text.split([' ', '\t', '\n', '\r', '(', ';'])
        .next()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, QType};

    const SAMPLE: &str = "\
$ORIGIN example.com.
$TTL 3600
@   IN SOA ns1 hostmaster ( 2024010101 ; serial
            3600 600 604800 300 )
    IN NS  ns1
    IN MX  10 mail
ns1 IN A   192.0.2.1
mail 60 IN A 192.0.2.25
     IN AAAA 2001:db8::25
txt IN TXT \"v=spf1 -all\" \"two ; strings\"
*.wild IN A 192.0.2.99
_sip._udp IN SRV 10 5 5060 sip
sip IN A 192.0.2.50
caa IN CAA 0 issue \"letsencrypt.org\"
odd IN TYPE65280 \\# 4 0a000001
gen IN A \\# 4 C0000201
sub IN NS ns.sub
ns.sub IN A 192.0.2.53
";

    fn zone(text: &str) -> Result<ZoneData, Vec<String>> {
        parse(Path::new("z.zone"), text, None)
            .map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn a_master_file_with_every_type_loads_and_answers() {
        let z = zone(SAMPLE).unwrap();
        assert_eq!(z.origin().as_str(), "example.com");
        assert_eq!(z.serial(), 2024010101);
        let ask = |name: &str, qtype| z.lookup(&Name::from_wire(name), qtype);
        let mx = ask("example.com", QType::Mx);
        assert_eq!(mx.additional.len(), 2, "{mx:?}");
        assert!(matches!(
            ask("txt.example.com", QType::Txt).outcome,
            Outcome::Answer(_)
        ));
        assert!(matches!(
            ask("caa.example.com", QType::Caa).outcome,
            Outcome::Answer(_)
        ));
        let srv = ask("_sip._udp.example.com", QType::Srv);
        assert_eq!(srv.additional.len(), 1);
        assert!(matches!(
            ask("a.sub.example.com", QType::A).outcome,
            Outcome::Referral(_)
        ));
        assert_eq!(
            ask("mail.example.com", QType::Aaaa).first_ip(),
            Some("2001:db8::25".parse().unwrap())
        );
    }

    #[test]
    fn batches_and_single_entries_agree() {
        // Many entries, some without an owner, cut into several batches.
        let mut text =
            String::from("$ORIGIN big.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n");
        for i in 0..1000 {
            text.push_str(&format!(
                "h{i} A 10.0.{}.{}\n AAAA ::{i:x}\n",
                i / 256,
                i % 256
            ));
        }
        let z = zone(&text).unwrap();
        assert_eq!(z.len(), 3 + 2000);
        let r = z.lookup(&Name::from_wire("h999.big"), QType::Aaaa);
        assert_eq!(r.first_ip(), Some("::3e7".parse().unwrap()));
    }

    #[test]
    fn without_ttl_a_record_takes_the_last_one() {
        let z = zone("example. 300 IN SOA ns hm 1 2 3 4 5\nexample. NS ns.example.\nns.example. 60 A 192.0.2.1\na.example. A 192.0.2.2\n").unwrap();
        let r = z.lookup(&Name::from_wire("a.example"), QType::A);
        let Outcome::Answer(records) = r.outcome else {
            panic!()
        };
        assert_eq!(records[0].ttl, 60);
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let text = "\
$ORIGIN example.com.
$TTL 3600
@ SOA ns hm 1 2 3 4 5
  NS ns
ns A 192.0.2.1
bad A 300.1.1.1
; a comment
x  BOGUS 1
c CNAME ns
c A 192.0.2.3
$INCLUDE other.zone
m MX 10 nowhere
";
        let e = zone(text).unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("z.zone:6: "), "{e:?}");
        assert!(e[1].starts_with("z.zone:8: "), "{e:?}");
        assert_eq!(
            e[2],
            "z.zone:10: c.example.com. has a CNAME and other data (RFC 1034 3.6.2)"
        );
        assert_eq!(
            e[3],
            "z.zone:11: $INCLUDE is not supported: a zone is one file"
        );
        let e = zone("$ORIGIN x.\n$TTL 1\nwww A 192.0.2.1\n").unwrap_err();
        assert_eq!(e, ["z.zone: no SOA record: a zone starts with its SOA"]);
    }
}
