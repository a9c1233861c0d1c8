//! Media the operator said are never to be touched (`--protect`, or
//! `protect` in the profile), named by what they are — a serial, a WWN, or a
//! partition-table or file-system UUID — never by a device name such as
//! `sdb`, which the next boot or a re-plugged cable gives to another disk
//! (the classic way the wrong disk gets wiped).

use super::marks::{Marks, normalise};

/// The protected identifiers, as given and as compared.
#[derive(Clone, Debug, Default)]
pub struct Protect {
    ids: Vec<(String, String)>,
}

impl Protect {
    /// From the identifiers given; blank ones are dropped.
    pub fn new(ids: impl IntoIterator<Item = String>) -> Protect {
        let ids = ids
            .into_iter()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .map(|id| {
                let compared = comparable(&id);
                (id, compared)
            })
            .collect();
        Protect { ids }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The protected identifier that names this medium — by its serial, its
    /// WWN, or an identifier its content carries — if one does.
    pub fn names(&self, serial: Option<&str>, wwn: Option<&str>, marks: Option<&Marks>) -> Option<&str> {
        let own: Vec<String> = [serial, wwn]
            .into_iter()
            .flatten()
            .map(comparable)
            .chain(marks.into_iter().flat_map(|m| m.ids.iter().cloned()))
            .collect();
        self.ids.iter().find(|(_, compared)| own.contains(compared)).map(|(given, _)| given.as_str())
    }
}

/// How identifiers are compared: case, dashes and the `naa.`/`eui.`/`0x`
/// prefixes WWNs are written with make no difference.
fn comparable(id: &str) -> String {
    let lower = id.trim().to_lowercase();
    let bare = ["naa.", "eui.", "t10.", "0x"].iter().find_map(|p| lower.strip_prefix(p)).unwrap_or(&lower);
    normalise(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_are_protected_by_serial_wwn_or_uuid_whatever_their_spelling() {
        let protect =
            Protect::new(["WD-WCC4N123".to_string(), "naa.5000C500A1B2C3D4".into(), "ABCD-1234".into()]);
        assert_eq!(protect.names(Some("wd-wcc4n123"), None, None), Some("WD-WCC4N123"));
        assert_eq!(protect.names(None, Some("0x5000c500a1b2c3d4"), None), Some("naa.5000C500A1B2C3D4"));
        let marks = Marks { size_bytes: 1, fingerprint: String::new(), ids: vec!["abcd1234".into()] };
        assert_eq!(protect.names(Some("OTHER"), None, Some(&marks)), Some("ABCD-1234"));
        assert_eq!(protect.names(Some("OTHER"), Some("naa.1"), None), None);
        assert!(Protect::new(["  ".to_string()]).is_empty());
    }
}
