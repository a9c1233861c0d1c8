//! OpenSSH allowed-signers files (`ssh-keygen(1)`, ALLOWED SIGNERS), read exactly
//! as OpenSSH 9.2's `ssh-keygen -Y verify` reads them, so that certwipe never
//! accepts a signer that stock `ssh-keygen` would refuse (and a differential test
//! holds both to that, line by line).
//!
//! The rules, from OpenSSH's `sshsig.c`, `match.c`, `misc.c` and `authfile.c`:
//! - A line is `principals [options] keytype base64 [comment]`. A line that cannot
//!   be read (bad quoting, unknown or repeated option, bad key, bad time) only
//!   disqualifies itself; the signer is allowed when any line allows it.
//! - Principals and `namespaces` are comma-separated pattern lists with `*`, `?`
//!   and `!` negation; a matching negation refuses the whole list.
//! - Option names are case-insensitive; values are double-quoted.
//! - `cert-authority` lines vouch only for OpenSSH certificates, never for the
//!   plain keys certwipe signs with.
//!
//! One rule is certwipe's own, and stricter: a line without `namespaces=`
//! (which OpenSSH reads as "any namespace") grants no certwipe duty, because
//! duties are kept apart by namespace (`certwipe` for a station's
//! certificates, `certwipe-witness`, `-approver`, `-validator`, `-ledger`).
//! - `valid-after`/`valid-before` are inclusive, `YYYYMMDD[HHMM[SS]]`, UTC with a
//!   `Z` or `UTC` suffix and local time otherwise, parsed with the C library's
//!   `strptime` as OpenSSH does.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};
use ssh_key::PublicKey;
use thiserror::Error;

/// Key type names OpenSSH knows (`sshkey.c` keyimpls), which must match the blob.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-dss",
];

/// A sub-pattern this long or longer makes OpenSSH's whole list fail to match.
const MAX_SUBPATTERN: usize = 1023;

/// A parsed allowed-signers file.
#[derive(Clone, Debug, Default)]
pub struct AllowedSigners {
    lines: Vec<Line>,
}

#[derive(Clone, Debug)]
struct Line {
    number: usize,
    /// `None`: OpenSSH cannot even find the principals ("invalid line").
    principals: Option<String>,
    body: Result<Body, String>,
}

#[derive(Clone, Debug)]
struct Body {
    key: PublicKey,
    cert_authority: bool,
    namespaces: Option<String>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

/// Who the file says signed: the line that allowed the key, and the principals it
/// grants (literal names, or patterns such as `station-*` as written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    pub line: usize,
    pub principals: Vec<String>,
    /// Every principal any line names for this key, whatever its namespaces
    /// or times: a key listed as `station-1` on one line and `zhang.san` on
    /// another is both, as far as separation of duties goes.
    pub identities: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{}", describe(.reasons))]
pub struct NotAllowed {
    /// Lines that named the key but refused it, and why.
    pub reasons: Vec<String>,
}

fn describe(reasons: &[String]) -> String {
    if reasons.is_empty() {
        "not listed in the allowed-signers file".to_string()
    } else {
        format!("refused by the allowed-signers file: {}", reasons.join("; "))
    }
}

impl AllowedSigners {
    pub fn load(path: &Path) -> Result<AllowedSigners, crate::input::InputError> {
        Ok(Self::parse(&crate::input::read_regular(path, crate::input::LIST)?))
    }

    /// Reads every line; a line OpenSSH would reject is kept as such (it allows
    /// nothing), exactly as `ssh-keygen` skips it.
    pub fn parse(bytes: &[u8]) -> AllowedSigners {
        // Lines keep their newline, as OpenSSH's getline() does: it matters to
        // where fields end.
        let lines = bytes
            .split_inclusive(|b| *b == b'\n')
            .enumerate()
            .filter_map(|(index, raw)| {
                // OpenSSH handles each line as a C string: a NUL ends it.
                let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
                parse_line(index + 1, &String::from_utf8_lossy(raw))
            })
            .collect();
        AllowedSigners { lines }
    }

    /// Lines that can never allow anything, for the operator's attention.
    pub fn problems(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|line| match (&line.principals, &line.body) {
                (None, _) => Some(format!("line {}: invalid line", line.number)),
                (Some(_), Err(why)) => Some(format!("line {}: {why}", line.number)),
                _ => None,
            })
            .collect()
    }

    /// Whether `key` may sign in `namespace` at time `at`: as the given principal
    /// (OpenSSH's `-I`), or, without one, as any principal the line names.
    pub fn authorize(
        &self,
        key: &PublicKey,
        principal: Option<&str>,
        namespace: &str,
        at: SystemTime,
    ) -> Result<Authorized, NotAllowed> {
        let at = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
        let mut reasons = Vec::new();
        for line in &self.lines {
            let Some(principals) = &line.principals else { continue };
            let granted = match principal {
                Some(wanted) if match_list(wanted, principals) == Match::Yes => vec![wanted.to_string()],
                Some(_) => continue,
                None => granted_principals(principals),
            };
            if granted.is_empty() {
                continue;
            }
            let Ok(body) = &line.body else { continue };
            if body.cert_authority || body.key.key_data() != key.key_data() {
                continue;
            }
            let refusal = if body.namespaces.is_none() {
                Some(format!(
                    "the line names no namespaces, so it grants no certwipe duty; add namespaces=\"{namespace}\""
                ))
            } else if body.namespaces.as_ref().is_some_and(|ns| match_list(namespace, ns) != Match::Yes) {
                Some(format!("key is not permitted for use in signature namespace {namespace:?}"))
            } else if body.valid_after.is_some_and(|after| at < after) {
                Some("key is not yet valid at the signing time (valid-after)".to_string())
            } else if body.valid_before.is_some_and(|before| at > before) {
                Some("key has expired at the signing time (valid-before)".to_string())
            } else {
                None
            };
            match refusal {
                Some(why) => reasons.push(format!("line {}: {why}", line.number)),
                None => {
                    return Ok(Authorized {
                        line: line.number,
                        principals: granted,
                        identities: self.identities(key),
                    });
                }
            }
        }
        Err(NotAllowed { reasons })
    }

    /// Whether any readable line's `namespaces=` option names `namespace`
    /// (literally or by a pattern).
    pub fn mentions_namespace(&self, namespace: &str) -> bool {
        self.lines.iter().any(|line| {
            line.body.as_ref().is_ok_and(|body| {
                body.namespaces.as_deref().is_some_and(|ns| match_list(namespace, ns) == Match::Yes)
            })
        })
    }

    /// Every principal any readable line grants `key`, in file order, once each.
    pub fn identities(&self, key: &PublicKey) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for line in &self.lines {
            let (Some(principals), Ok(body)) = (&line.principals, &line.body) else { continue };
            if body.cert_authority || body.key.key_data() != key.key_data() {
                continue;
            }
            for name in granted_principals(principals) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// The principals a line grants when no principal is asked for: every name in its
/// list that the list itself accepts. `station-1,!station-1` grants nothing, an
/// empty list grants nothing, and `station-*` grants the pattern as written.
fn granted_principals(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|p| !p.is_empty() && !p.starts_with('!'))
        .filter(|p| match_list(p, list) == Match::Yes)
        .map(str::to_string)
        .collect()
}

/// A principal that both lists grant (a name in one that the other's pattern
/// accepts): two signers sharing it are one person as far as the file can tell.
pub fn shared_principal(a: &[String], b: &[String]) -> Option<String> {
    a.iter().find_map(|x| {
        b.iter()
            .find(|y| match_pattern(x.as_bytes(), y.as_bytes()) || match_pattern(y.as_bytes(), x.as_bytes()))
            .map(|y| if x.contains(['*', '?']) { y.clone() } else { x.clone() })
    })
}

/// One line, or `None` for a blank or comment line.
fn parse_line(number: usize, line: &str) -> Option<Line> {
    let rest = line.trim_start_matches([' ', '\t']);
    // A blank line (even "\r\n") is read by OpenSSH as an empty principal list,
    // which never matches: the same as skipping it.
    if rest.starts_with('#') || rest.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
        return None;
    }
    let Some((principals, rest)) = principals_field(rest) else {
        return Some(Line { number, principals: None, body: Err("invalid line".into()) });
    };
    Some(Line { number, principals: Some(principals), body: parse_body(rest) })
}

/// OpenSSH's `strdelimw`: the field ends at whitespace or a double quote; one
/// quoted section is taken literally (no escapes), and what follows its closing
/// quote starts the next field. `None` when there is no next field at all.
fn principals_field(text: &str) -> Option<(String, &str)> {
    const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];
    let end = text.find([' ', '\t', '\r', '\n', '"'])?;
    let (field, rest) = if text[end..].starts_with('"') {
        let after_quote = &text[end + 1..];
        let close = after_quote.find('"')?;
        (format!("{}{}", &text[..end], &after_quote[..close]), &after_quote[close + 1..])
    } else {
        (text[..end].to_string(), &text[end + 1..])
    };
    Some((field, rest.trim_start_matches(WHITESPACE)))
}

fn parse_body(text: &str) -> Result<Body, String> {
    let (options, key) = match read_key(text) {
        Some(key) => (None, key),
        None => {
            let end = options_end(text).ok_or("invalid options")?;
            if end == text.len() {
                return Err("missing key".into());
            }
            let key = read_key(text[end + 1..].trim_start_matches([' ', '\t'])).ok_or("invalid key")?;
            (Some(&text[..end]), key)
        }
    };
    let mut body =
        Body { key, cert_authority: false, namespaces: None, valid_after: None, valid_before: None };
    if let Some(options) = options {
        parse_options(options, &mut body).map_err(|why| format!("bad options: {why}"))?;
    }
    Ok(body)
}

/// OpenSSH's `sshkey_read`: an exact type name, a tab or space, a base64 blob that
/// decodes to a key of that type; anything after the blob is a comment.
fn read_key(text: &str) -> Option<PublicKey> {
    let type_end = text.find([' ', '\t'])?;
    let type_name = &text[..type_end];
    if !KEY_TYPES.contains(&type_name) {
        return None;
    }
    let blob_text = text[type_end..].trim_start_matches([' ', '\t']);
    let blob_text = &blob_text[..blob_text.find([' ', '\t']).unwrap_or(blob_text.len())];
    // b64_pton skips white space (a line ending's \r among it) and wants exact padding.
    let compact: String = blob_text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let blob = Base64::decode_vec(&compact).ok()?;
    let key = PublicKey::from_bytes(&blob).ok()?;
    let blob_type = key.algorithm().to_string();
    let same_type = blob_type == type_name
        || (blob_type == "ssh-rsa" && matches!(type_name, "rsa-sha2-256" | "rsa-sha2-512"));
    same_type.then_some(key)
}

/// OpenSSH's `sshkey_advance_past_options`: the options end at the first space or
/// tab outside double quotes (`\"` does not toggle quoting). `None` when a quote
/// is left open.
fn options_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < bytes.len() && (quoted || (bytes[i] != b' ' && bytes[i] != b'\t')) {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if bytes[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    (!(i == bytes.len() && quoted)).then_some(i)
}

/// OpenSSH's `sshsigopt_parse`.
fn parse_options(mut opts: &str, body: &mut Body) -> Result<(), &'static str> {
    while !opts.is_empty() {
        if starts_with_ignore_case(opts, "cert-authority") {
            body.cert_authority = true;
            opts = &opts["cert-authority".len()..];
        } else if let Some(rest) = option_value_start(opts, "namespaces") {
            if body.namespaces.is_some() {
                return Err("multiple \"namespaces\" clauses");
            }
            let (value, rest) = dequote(rest)?;
            body.namespaces = Some(value);
            opts = rest;
        } else if let Some(rest) = option_value_start(opts, "valid-after") {
            if body.valid_after.is_some() {
                return Err("multiple \"valid-after\" clauses");
            }
            let (value, rest) = dequote(rest)?;
            body.valid_after = Some(parse_time(&value).ok_or("invalid \"valid-after\" time")?);
            opts = rest;
        } else if let Some(rest) = option_value_start(opts, "valid-before") {
            if body.valid_before.is_some() {
                return Err("multiple \"valid-before\" clauses");
            }
            let (value, rest) = dequote(rest)?;
            body.valid_before = Some(parse_time(&value).ok_or("invalid \"valid-before\" time")?);
            opts = rest;
        }
        if opts.is_empty() {
            break;
        }
        opts = opts.strip_prefix(',').ok_or("unknown key option")?;
        if opts.is_empty() {
            return Err("unexpected end-of-options");
        }
    }
    if let (Some(after), Some(before)) = (body.valid_after, body.valid_before)
        && before <= after
    {
        return Err("\"valid-before\" time is before \"valid-after\"");
    }
    Ok(())
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// `name=` (name in any case) at the start of `opts`: what follows the `=`.
fn option_value_start<'a>(opts: &'a str, name: &str) -> Option<&'a str> {
    (starts_with_ignore_case(opts, name) && opts.as_bytes().get(name.len()) == Some(&b'='))
        .then(|| &opts[name.len() + 1..])
}

/// OpenSSH's `opt_dequote`: a double-quoted value where `\"` stands for `"`.
fn dequote(text: &str) -> Result<(String, &str), &'static str> {
    let inner = text.strip_prefix('"').ok_or("missing start quote")?;
    let bytes = inner.as_bytes();
    let (mut value, mut i) = (Vec::new(), 0);
    while i < bytes.len() && bytes[i] != b'"' {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"') {
            i += 1;
        }
        value.push(bytes[i]);
        i += 1;
    }
    if i == bytes.len() {
        return Err("missing end quote");
    }
    Ok((String::from_utf8_lossy(&value).into_owned(), &inner[i + 1..]))
}

/// OpenSSH's `parse_absolute_time`, by the same C library calls, so that glibc's
/// leniencies (a space inside a field, second 61, 29 February of any year) are
/// the same here. Returns seconds since the epoch; 0 and negative times refused.
pub fn parse_time(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let (digits, utc) = if text.len() > 1 && lower.ends_with('z') {
        (&text[..text.len() - 1], true)
    } else if text.len() > 3 && lower.ends_with("utc") {
        (&text[..text.len() - 3], true)
    } else {
        (text, false)
    };
    let field = |range: std::ops::Range<usize>| digits.get(range);
    let (buffer, format) = match digits.len() {
        8 => (format!("{}-{}-{}", field(0..4)?, field(4..6)?, field(6..8)?), "%Y-%m-%d"),
        12 => (
            format!(
                "{}-{}-{}T{}:{}",
                field(0..4)?,
                field(4..6)?,
                field(6..8)?,
                field(8..10)?,
                field(10..12)?
            ),
            "%Y-%m-%dT%H:%M",
        ),
        14 => (
            format!(
                "{}-{}-{}T{}:{}:{}",
                field(0..4)?,
                field(4..6)?,
                field(6..8)?,
                field(8..10)?,
                field(10..12)?,
                field(12..14)?
            ),
            "%Y-%m-%dT%H:%M:%S",
        ),
        _ => return None,
    };
    let (buffer, format) = (CString::new(buffer).ok()?, CString::new(format).ok()?);
    // SAFETY: `tm` is a zeroed plain C struct; `buffer` and `format` are live
    // NUL-terminated strings for the duration of the call; strptime writes only
    // into `tm` and returns a pointer into `buffer` (or null).
    let seconds = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let end = libc::strptime(buffer.as_ptr(), format.as_ptr(), &mut tm);
        if end.is_null() || *end != 0 {
            return None;
        }
        if utc { libc::timegm(&mut tm) } else { libc::mktime(&mut tm) }
    };
    u64::try_from(seconds).ok().filter(|s| *s > 0)
}

#[derive(Debug, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    Negated,
}

/// OpenSSH's `match_pattern_list`: comma-separated sub-patterns, no trimming; a
/// matching `!pattern` refuses the whole list; a sub-pattern of 1,023 bytes or
/// more fails the list.
fn match_list(subject: &str, list: &str) -> Match {
    let mut positive = false;
    let mut rest = list.as_bytes();
    while !rest.is_empty() {
        let negated = rest[0] == b'!';
        if negated {
            rest = &rest[1..];
        }
        let end = rest.iter().position(|b| *b == b',').unwrap_or(rest.len());
        if end >= MAX_SUBPATTERN {
            return Match::No;
        }
        if match_pattern(subject.as_bytes(), &rest[..end]) {
            if negated {
                return Match::Negated;
            }
            positive = true;
        }
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    if positive { Match::Yes } else { Match::No }
}

/// OpenSSH's `match_pattern`: `*` any run, `?` one byte, the rest exact, the whole
/// subject. Same answers as OpenSSH's recursion, in time linear in practice
/// (backtracking only to the last `*`), so a hostile pattern cannot stall a check.
fn match_pattern(subject: &[u8], pattern: &[u8]) -> bool {
    let (mut s, mut p) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while s < subject.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, s));
                p += 1;
            }
            Some(&c) if c == b'?' || c == subject[s] => {
                s += 1;
                p += 1;
            }
            _ => match last_star {
                Some((star, from)) => {
                    p = star + 1;
                    s = from + 1;
                    last_star = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::{Algorithm, PrivateKey};

    fn key() -> PrivateKey {
        PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519).unwrap()
    }

    fn allows(text: &str, key: &PublicKey, principal: Option<&str>) -> Option<Vec<String>> {
        let allowed = AllowedSigners::parse(text.as_bytes());
        allowed.authorize(key, principal, "certwipe", SystemTime::now()).ok().map(|a| a.principals)
    }

    #[test]
    fn patterns_follow_openssh() {
        assert_eq!(match_list("station-1", "station-1"), Match::Yes);
        assert_eq!(match_list("station-1", "station-?"), Match::Yes);
        assert_eq!(match_list("station-1", "s*1"), Match::Yes);
        assert_eq!(match_list("station-1", "station-1,!station-1"), Match::Negated);
        assert_eq!(match_list("station-1", "!other"), Match::No);
        assert_eq!(match_list("station-1", "*,!other"), Match::Yes);
        assert_eq!(match_list("Station-1", "station-1"), Match::No);
        assert_eq!(match_list("", ",station-1"), Match::Yes);
        assert_eq!(match_list("", ""), Match::No);
        assert_eq!(match_list("x", &format!("x,{}", "y".repeat(1023))), Match::No);
        for (subject, pattern, expected) in [
            ("abc", "a*c", true),
            ("ac", "a*c", true),
            ("abcbc", "a*bc", true),
            ("abcbd", "a*bc", false),
            ("", "*", true),
            ("", "?", false),
            ("abc", "**?**", true),
            ("station-10", "station-?", false),
        ] {
            assert_eq!(
                match_pattern(subject.as_bytes(), pattern.as_bytes()),
                expected,
                "{subject} {pattern}"
            );
        }
        // A pattern that makes a naive recursion take exponential time.
        let hostile = format!("{}b", "*a".repeat(40));
        assert!(!match_pattern("a".repeat(1000).as_bytes(), hostile.as_bytes()));
    }

    #[test]
    fn lines_are_read_as_openssh_reads_them() {
        let signer = key();
        let public = signer.public_key();
        let text = public.to_openssh().unwrap();
        let good = |line: &str| allows(&line.replace("KEY", &text), public, Some("station-1")).is_some();
        assert!(good("station-1 namespaces=\"certwipe\" KEY"));
        assert!(!good("station-1 KEY"), "a line without namespaces grants no certwipe duty");
        assert!(good("  station-1\tnamespaces=\"certwipe\" KEY trailing comment"));
        assert!(good("station-1 NAMESPACES=\"cert*\" KEY"));
        assert!(good("\"station-1,station-2\" namespaces=\"certwipe\" KEY"));
        assert!(!good("station-1 NAMESPACES=\"other\" KEY"));
        assert!(!good("station-1 namespaces=\"certwipe\",namespaces=\"other\" KEY"));
        assert!(!good("station-1 foo=\"bar\" KEY"));
        assert!(!good("station-1 cert-authority,namespaces=\"certwipe\" KEY"));
        assert!(!good("station-1 CERT-AUTHORITY,namespaces=\"certwipe\" KEY"));
        assert!(!good("station-1,!station-1 namespaces=\"certwipe\" KEY"));
        assert!(!good("\"\" namespaces=\"certwipe\" KEY"));
        assert!(!good("station-1 namespaces=\"certwipe\", KEY"));
        assert!(!good("station-1 namespaces=\"certwipe\",valid-before=\"20000101\" KEY"));
        assert!(good("station-1 foo=\"bar\" KEY\nstation-1 namespaces=\"certwipe\" KEY"));
        let granted = |line: &str| allows(&line.replace("KEY", &text), public, None);
        assert!(granted("\"\" namespaces=\"certwipe\" KEY").is_none());
        assert!(granted("station-1,!station-1 namespaces=\"certwipe\" KEY").is_none());
        assert_eq!(granted("a,b,!c namespaces=\"certwipe\" KEY"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(granted("station-* namespaces=\"certwipe\" KEY"), Some(vec!["station-*".into()]));
    }

    #[test]
    fn a_key_on_several_lines_is_every_principal_they_name() {
        let signer = key();
        let public = signer.public_key();
        let text = public.to_openssh().unwrap();
        let file = format!(
            "zhang.san namespaces=\"certwipe-witness\" {text}\nstation-1 namespaces=\"certwipe\" {text}\nbad line\n"
        );
        let allowed = AllowedSigners::parse(file.as_bytes());
        let witness = allowed.authorize(public, None, "certwipe-witness", SystemTime::now()).unwrap();
        assert_eq!(witness.principals, ["zhang.san"]);
        assert_eq!(witness.identities, ["zhang.san", "station-1"]);
    }

    #[test]
    fn times_are_inclusive_and_parsed_like_openssh() {
        assert_eq!(parse_time("20300101Z"), Some(1_893_456_000));
        assert_eq!(parse_time("20300101UTC"), Some(1_893_456_000));
        assert_eq!(parse_time("203001010000Z"), Some(1_893_456_000));
        assert_eq!(parse_time("20300101000001z"), Some(1_893_456_001));
        for bad in ["2030-01-01", "2030010", "20301301Z", "19700101Z", "20000101Zz", "2000010a", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        let signer = key();
        let line = format!(
            "station-1 namespaces=\"certwipe\",valid-before=\"20300101Z\" {}",
            signer.public_key().to_openssh().unwrap()
        );
        let allowed = AllowedSigners::parse(line.as_bytes());
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert!(allowed.authorize(signer.public_key(), None, "certwipe", at(1_893_456_000)).is_ok());
        assert!(allowed.authorize(signer.public_key(), None, "certwipe", at(1_893_456_001)).is_err());
    }
}
