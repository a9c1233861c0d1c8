//! One reading per document. A signed JSON file is only worth its signature if
//! every reader sees the same content in it: a duplicated key (`"status"` twice)
//! reads as the first value to one parser and the last to another, and escapes or
//! reformatting let two different byte strings say the same thing. So certwipe
//! accepts exactly the bytes it writes itself — pretty-printed, fields in their
//! fixed order, no escapes beyond what JSON requires, one trailing newline — and
//! checks that before trusting anything in them.

use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The largest certificate or statement certwipe reads ([`crate::input::DOCUMENT`]).
pub const MAX_DOCUMENT_BYTES: u64 = crate::input::DOCUMENT;

#[derive(Debug, Error)]
pub enum CanonicalError {
    #[error(
        "{bytes} bytes is more than the {MAX_DOCUMENT_BYTES} a certwipe document can have; refused unread"
    )]
    TooLarge { bytes: u64 },
    #[error("not valid JSON: {0}")]
    Syntax(String),
    #[error("duplicate key: {0}; a document must have exactly one reading")]
    DuplicateKey(String),
    #[error("does not match the schema: {0}")]
    Schema(String),
    #[error(
        "not in the canonical form certwipe writes (first difference on line {line}: {found:?}, expected {expected:?}); re-formatted, re-escaped or reordered JSON is refused"
    )]
    NotCanonical { line: usize, found: String, expected: String },
}

/// Pretty JSON in the type's field order, with one trailing newline: the only form
/// certwipe writes and the only one it reads.
pub fn to_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("certwipe documents always serialize");
    bytes.push(b'\n');
    bytes
}

/// Checks syntax and duplicate keys only, so a caller can look at a field (a
/// format version) before committing to a type.
pub fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, CanonicalError> {
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(CanonicalError::TooLarge { bytes: bytes.len() as u64 });
    }
    serde_json::from_slice::<Unique>(bytes).map_err(|e| {
        let text = e.to_string();
        match text.strip_prefix(DUPLICATE) {
            Some(key) => CanonicalError::DuplicateKey(key.to_string()),
            None => CanonicalError::Syntax(text),
        }
    })?;
    serde_json::from_slice(bytes).map_err(|e| CanonicalError::Syntax(e.to_string()))
}

/// Parses `bytes` as a `T`, refusing anything but its canonical form.
pub fn parse<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, CanonicalError> {
    let value = parse_value(bytes)?;
    let parsed: T = serde_json::from_value(value).map_err(|e| CanonicalError::Schema(e.to_string()))?;
    let canonical = to_bytes(&parsed);
    if canonical != bytes {
        return Err(first_difference(bytes, &canonical));
    }
    Ok(parsed)
}

fn first_difference(found: &[u8], expected: &[u8]) -> CanonicalError {
    let found_text = String::from_utf8_lossy(found);
    let expected_text = String::from_utf8_lossy(expected);
    let mut found_lines = found_text.split('\n');
    let mut expected_lines = expected_text.split('\n');
    let shorten = |line: &str| line.chars().take(80).collect::<String>();
    for line in 1.. {
        match (found_lines.next(), expected_lines.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (a, b) => {
                return CanonicalError::NotCanonical {
                    line,
                    found: shorten(a.unwrap_or("end of file")),
                    expected: shorten(b.unwrap_or("end of file")),
                };
            }
        }
    }
    unreachable!("two different byte strings differ on some line")
}

const DUPLICATE: &str = "duplicate key ";

/// Any JSON value, checked for duplicate keys in every object at every depth.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{key:?}")));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        status: String,
        inner: Inner,
        ratio: f64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        operator: String,
    }

    fn doc() -> Doc {
        Doc { status: "failed".into(), inner: Inner { operator: "Li Wei".into() }, ratio: 0.1 + 0.2 }
    }

    #[test]
    fn the_canonical_form_round_trips_including_floats() {
        let bytes = to_bytes(&doc());
        assert_eq!(parse::<Doc>(&bytes).unwrap(), doc());
        for ratio in [1e-300, 0.123_456_789_012_345_67, 2.0 / 3.0, f64::MAX, 5e-324] {
            let doc = Doc { ratio, ..doc() };
            assert_eq!(parse::<Doc>(&to_bytes(&doc)).unwrap(), doc, "{ratio}");
        }
    }

    #[test]
    fn duplicate_keys_at_any_depth_are_refused() {
        let top = b"{\n  \"status\": \"failed\",\n  \"status\": \"erased\"\n}\n";
        assert!(matches!(parse::<Doc>(top), Err(CanonicalError::DuplicateKey(k)) if k.contains("status")));
        let deep = br#"{"status":"x","inner":{"operator":"a","operator":"b"},"ratio":1}"#;
        assert!(matches!(parse_value(deep), Err(CanonicalError::DuplicateKey(k)) if k.contains("operator")));
    }

    #[test]
    fn compact_reescaped_or_reordered_json_is_refused() {
        let canonical = String::from_utf8(to_bytes(&doc())).unwrap();
        let compact = serde_json::to_vec(&doc()).unwrap();
        let escaped = canonical.replace("failed", "\\u0066ailed");
        let reordered = "{\n  \"inner\": {\n    \"operator\": \"Li Wei\"\n  },\n  \"status\": \"failed\",\n  \"ratio\": 0.30000000000000004\n}\n";
        let no_newline = canonical.trim_end();
        for bad in [&compact[..], escaped.as_bytes(), reordered.as_bytes(), no_newline.as_bytes()] {
            assert!(
                matches!(parse::<Doc>(bad), Err(CanonicalError::NotCanonical { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let huge = vec![b' '; MAX_DOCUMENT_BYTES as usize + 1];
        assert!(matches!(parse_value(&huge), Err(CanonicalError::TooLarge { .. })));
    }
}
