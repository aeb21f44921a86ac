//! Host names: validation and normalisation.
//!
//! A [`Name`] is what every role looks up: lowercase, without a trailing dot, at least
//! two labels (a host under a TLD), each label 1–63 letters, digits or hyphens with no
//! hyphen at either end, 253 characters at most, and a TLD that is not all digits (so
//! an IPv4 literal is not taken for a name).

use std::fmt;
use std::sync::Arc;

/// The longest name accepted, in characters, without the trailing dot (RFC 1035).
pub const MAX_NAME: usize = 253;
/// The longest label accepted (RFC 1035).
pub const MAX_LABEL: usize = 63;

/// A validated host name, always lowercase and without a trailing dot.
///
/// Shared, not copied: a clone (a query's name in its records, a synthesized SOA in
/// every negative answer) is a reference count, not an allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

/// Why a string is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("name longer than {MAX_NAME} characters")]
    TooLong,
    #[error("empty label")]
    EmptyLabel,
    #[error("label longer than {MAX_LABEL} characters")]
    LabelTooLong,
    #[error("character {0:?} is not a letter, digit, hyphen or dot")]
    BadChar(char),
    #[error("label starts or ends with a hyphen")]
    HyphenAtEdge,
    #[error("a single label is a TLD, not a host name under one")]
    SingleLabel,
    #[error("all-numeric top-level domain (an IP address is not a name)")]
    NumericTld,
}

impl Name {
    /// Validates `s` and returns it normalised (lowercase, no trailing dot).
    pub fn parse(s: &str) -> Result<Name, NameError> {
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed.len() > MAX_NAME {
            return Err(NameError::TooLong);
        }
        if let Some(c) = trimmed
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return Err(NameError::BadChar(c));
        }
        let mut labels = 0;
        for label in trimmed.split('.') {
            check_label(label)?;
            labels += 1;
        }
        if labels < 2 {
            return Err(NameError::SingleLabel);
        }
        let tld = trimmed.rsplit('.').next().unwrap_or(trimmed);
        if tld.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NameError::NumericTld);
        }
        Ok(Name(lowercase(trimmed)))
    }

    /// A name as DNS carries it, lowercased and without its trailing dot, but not
    /// validated: DNS asks about names the line protocol rejects (a TLD alone, `_dns`
    /// labels, an all-digit TLD), and each must still get an answer. The root is `""`.
    pub fn from_wire(s: &str) -> Name {
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        Name(lowercase(trimmed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root (the empty name).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this name is `zone` or under it (`zone` `""` is the root, above all).
    pub fn is_within(&self, zone: &str) -> bool {
        within(&self.0, zone)
    }

    /// The top-level domain: the last label (`""` for the root).
    pub fn tld(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or(&self.0)
    }

    /// The name the original design also tries when this one has no record of its own:
    /// `www.` + name, unless the name already starts with `www.`.
    pub fn www_alias(&self) -> Option<String> {
        if self.0.starts_with("www.") {
            None
        } else {
            Some(format!("www.{}", self.0))
        }
    }

    /// The original's `www.` rule, written once: what `find` gives for this name, or,
    /// when it gives nothing, what it gives for `www.` + name.
    pub fn or_www<T>(&self, mut find: impl FnMut(&Name) -> Option<T>) -> Option<T> {
        find(self).or_else(|| find(&Name::from_wire(&self.www_alias()?)))
    }
}

/// `s` in lowercase, shared: one allocation when it is lowercase already (as names
/// nearly always arrive), where lowercasing into a `String` first would take two.
/// Whether the normalised name `name` is `zone` or under it (`""`, the root, holds
/// every name): [`Name::is_within`] for text not made a `Name`.
pub fn within(name: &str, zone: &str) -> bool {
    zone.is_empty()
        || name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

fn lowercase(s: &str) -> Arc<str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        s.to_ascii_lowercase().into()
    } else {
        s.into()
    }
}

/// Validates one label: 1–63 letters, digits or hyphens, no hyphen at either end.
pub fn check_label(label: &str) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    if label.len() > MAX_LABEL {
        return Err(NameError::LabelTooLong);
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(NameError::BadChar(c));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(NameError::HyphenAtEdge);
    }
    Ok(())
}

/// Validates a top-level domain as the root table and `dnsd tld` take it: one label,
/// not all digits; returned lowercase.
pub fn parse_tld(s: &str) -> Result<String, NameError> {
    let s = s.strip_suffix('.').unwrap_or(s);
    check_label(s)?;
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::NumericTld);
    }
    Ok(s.to_ascii_lowercase())
}

/// A map keyed by names is looked up by `&str` without building a `Name` (the hash and
/// order of a `Name` are those of its text).
impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_trailing_dot() {
        assert_eq!(
            Name::parse("WWW.Google.COM.").unwrap().as_str(),
            "www.google.com"
        );
    }

    #[test]
    fn accepts_deep_names() {
        let n = Name::parse("a.b.mail.google.com").unwrap();
        assert_eq!(n.tld(), "com");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Name::parse("bad"), Err(NameError::SingleLabel));
        assert_eq!(Name::parse("."), Err(NameError::Empty));
        assert_eq!(Name::parse("a..com"), Err(NameError::EmptyLabel));
        assert_eq!(Name::parse("-a.com"), Err(NameError::HyphenAtEdge));
        assert_eq!(Name::parse("a_b.com"), Err(NameError::BadChar('_')));
        assert_eq!(Name::parse("1.2.3.4"), Err(NameError::NumericTld));
        assert_eq!(Name::parse("::1"), Err(NameError::BadChar(':')));
        let long_label = format!("{}.com", "a".repeat(64));
        assert_eq!(Name::parse(&long_label), Err(NameError::LabelTooLong));
        let long_name = format!("{}com", "abcdefghi.".repeat(26));
        assert_eq!(Name::parse(&long_name), Err(NameError::TooLong));
    }

    #[test]
    fn www_alias_only_without_www() {
        assert_eq!(
            Name::parse("google.com").unwrap().www_alias().as_deref(),
            Some("www.google.com")
        );
        assert_eq!(Name::parse("www.google.com").unwrap().www_alias(), None);
    }
}
