//! The organisation's records that travel with a certificate: who sanitized the
//! medium, its ledger number and classification, where it goes next. Values come
//! from a station profile (TOML) and per-run flags, flags winning.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Classification levels of the users' secrecy rules (保密工作制度), lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// 非密
    Unclassified,
    /// 内部
    Internal,
    /// 秘密
    Confidential,
    /// 机密
    Secret,
    /// 绝密
    TopSecret,
}

impl Classification {
    pub const ALL: [Classification; 5] = [
        Classification::Unclassified,
        Classification::Internal,
        Classification::Confidential,
        Classification::Secret,
        Classification::TopSecret,
    ];

    pub fn english(self) -> &'static str {
        match self {
            Classification::Unclassified => "unclassified",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Secret => "secret",
            Classification::TopSecret => "top-secret",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            Classification::Unclassified => "非密",
            Classification::Internal => "内部",
            Classification::Confidential => "秘密",
            Classification::Secret => "机密",
            Classification::TopSecret => "绝密",
        }
    }

    /// Above unclassified: such a medium is never reused for unclassified data.
    pub fn is_controlled(self) -> bool {
        self > Classification::Unclassified
    }
}

impl std::str::FromStr for Classification {
    type Err = RecordsError;
    fn from_str(text: &str) -> Result<Self, RecordsError> {
        let wanted = text.trim().to_lowercase().replace(['_', ' '], "-");
        Classification::ALL
            .into_iter()
            .find(|c| c.english() == wanted || c.chinese() == text.trim())
            .ok_or_else(|| RecordsError::UnknownClassification(text.to_string()))
    }
}

crate::named! {
    /// Where the medium goes after sanitization (NIST SP 800-88 App. G).
    pub enum Destination: "destination" {
        InternalReuse = "internal-reuse",
        ExternalReuse = "external-reuse",
        Recycling = "recycling",
        /// Back to the manufacturer, e.g. for repair under supervision.
        Manufacturer = "manufacturer",
        Destruction = "destruction",
    }
}

impl Destination {
    /// Destinations a controlled medium may not take: it would leave the
    /// organisation's control or be reused below its level.
    pub fn allowed_for(self, level: Classification) -> bool {
        !level.is_controlled() || matches!(self, Destination::Manufacturer | Destination::Destruction)
    }
}

crate::named! {
    pub enum BackedUp: "backed-up answer" {
        Yes = "yes",
        No = "no",
        Unknown = "unknown",
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: Option<String>,
    pub title: Option<String>,
    /// Staff or badge number.
    pub id: Option<String>,
    pub contact: Option<String>,
}

/// Everything the organisation records about a medium and this sanitization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Records {
    pub organisation: Option<String>,
    pub site: Option<String>,
    /// The medium's number in the media ledger (台帐) or property register.
    pub asset_number: Option<String>,
    pub classification_before: Option<Classification>,
    pub classification_after: Option<Classification>,
    /// The user or computer the medium came from.
    pub media_source: Option<String>,
    pub data_backed_up: BackedUp,
    pub backup_location: Option<String>,
    pub destination: Option<Destination>,
    pub operator: Person,
    pub notes: Option<String>,
}

/// A station profile: the defaults a technician would otherwise retype.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub organisation: Option<String>,
    pub site: Option<String>,
    pub classification: Option<String>,
    pub media_source: Option<String>,
    pub data_backed_up: Option<BackedUp>,
    pub backup_location: Option<String>,
    pub destination: Option<Destination>,
    #[serde(default)]
    pub operator: Person,
    pub notes: Option<String>,
    /// The OpenSSH allowed_signers file that certificates are verified against.
    pub allowed_signers: Option<PathBuf>,
    /// The station's signing key (OpenSSH Ed25519), for certificates and ledger entries.
    pub sign_key: Option<PathBuf>,
    /// The records office's page (`certwipe serve`), e.g. `https://records.example/`:
    /// printed certificates' QR codes then open `<verify_url>/c/<id>?sha256=<hex>`.
    pub verify_url: Option<String>,
    /// Media never written, by serial, WWN or partition/file-system UUID.
    #[serde(default)]
    pub protect: Vec<String>,
}

/// The default profile, used when it exists and no `--profile` is given.
pub const DEFAULT_PROFILE: &str = "/etc/certwipe/profile.toml";

#[derive(Debug, Error)]
pub enum RecordsError {
    #[error(
        "unknown classification {0:?}; use unclassified (非密), internal (内部), confidential (秘密), secret (机密) or top-secret (绝密)"
    )]
    UnknownClassification(String),
    #[error("profile {path}: {message}")]
    Profile { path: String, message: String },
    #[error(
        "classification after sanitization ({after}) is lower than before ({before}): media that held classified data are never downgraded"
    )]
    Downgrade { before: &'static str, after: &'static str },
    #[error(
        "a {level} medium cannot go to {destination}: classified media are never reused outside their level or released; the destination must be destruction (or the manufacturer, for supervised repair)"
    )]
    DestinationForbidden { level: &'static str, destination: Destination },
    #[error(
        "{field} contains the control character U+{code:04X} (at character {position}); records are single lines of visible text"
    )]
    HiddenCharacter { field: &'static str, code: u32, position: usize },
    #[error("{field} is {chars} characters long; at most {max} are allowed")]
    TooLong { field: &'static str, chars: usize, max: usize },
    #[error("{field} is empty")]
    Empty { field: &'static str },
}

// Records are checked before anything is written.
impl crate::exit::ExitStatus for RecordsError {
    fn exit_status(&self) -> u8 {
        crate::exit::USAGE
    }
}

/// Longest ledger numbers, asset numbers, serials and dates.
pub const MAX_NUMBER_CHARS: usize = 64;
/// Longest names, titles, organisations, places.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest notes.
pub const MAX_NOTES_CHARS: usize = 2000;

/// A record field must be visible text on one line, of bounded length: a name
/// with terminal escapes or a newline can forge lines of a printout.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), RecordsError> {
    if value.trim().is_empty() {
        return Err(RecordsError::Empty { field });
    }
    if let Some((position, c)) = value.chars().enumerate().find(|(_, c)| super::display::is_hidden(*c)) {
        return Err(RecordsError::HiddenCharacter { field, code: c as u32, position: position + 1 });
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(RecordsError::TooLong { field, chars, max });
    }
    Ok(())
}

pub fn check_optional(field: &'static str, value: Option<&str>, max: usize) -> Result<(), RecordsError> {
    value.map_or(Ok(()), |v| check_text(field, v, max))
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, RecordsError> {
        let error = |message: String| RecordsError::Profile { path: path.display().to_string(), message };
        let text = crate::input::read_text(path, crate::input::LIST).map_err(|e| error(e.to_string()))?;
        toml::from_str(&text).map_err(|e| error(e.to_string()))
    }

    /// The profile given, else the default one if it exists, else an empty one.
    pub fn find(path: Option<&Path>) -> Result<Profile, RecordsError> {
        match path {
            Some(path) => Profile::load(path),
            None if Path::new(DEFAULT_PROFILE).exists() => Profile::load(Path::new(DEFAULT_PROFILE)),
            None => Ok(Profile::default()),
        }
    }
}

impl Records {
    /// Applies the rules of the users' regulations: classification never drops,
    /// and a controlled medium never leaves control except to be destroyed or repaired.
    /// A missing "after" classification is the "before" one.
    pub fn enforce_rules(&mut self) -> Result<(), RecordsError> {
        self.check_fields()?;
        if self.classification_after.is_none() {
            self.classification_after = self.classification_before;
        }
        if let (Some(before), Some(after)) = (self.classification_before, self.classification_after)
            && after < before
        {
            return Err(RecordsError::Downgrade { before: before.english(), after: after.english() });
        }
        let level = self.classification_before.max(self.classification_after);
        if let (Some(level), Some(destination)) = (level, self.destination)
            && !destination.allowed_for(level)
        {
            return Err(RecordsError::DestinationForbidden { level: level.english(), destination });
        }
        Ok(())
    }
}

impl Records {
    /// Every free-text field: its name, its value, and the most characters it may hold.
    pub fn texts(&self) -> [(&'static str, Option<&str>, usize); 10] {
        let o = &self.operator;
        [
            ("organisation", self.organisation.as_deref(), MAX_NAME_CHARS),
            ("site", self.site.as_deref(), MAX_NAME_CHARS),
            ("asset number", self.asset_number.as_deref(), MAX_NUMBER_CHARS),
            ("media source", self.media_source.as_deref(), MAX_NAME_CHARS),
            ("backup location", self.backup_location.as_deref(), MAX_NAME_CHARS),
            ("operator name", o.name.as_deref(), MAX_NAME_CHARS),
            ("operator title", o.title.as_deref(), MAX_NAME_CHARS),
            ("operator id", o.id.as_deref(), MAX_NUMBER_CHARS),
            ("operator contact", o.contact.as_deref(), MAX_NAME_CHARS),
            ("notes", self.notes.as_deref(), MAX_NOTES_CHARS),
        ]
    }

    /// Every free-text field, as [`check_text`] wants it.
    pub fn check_fields(&self) -> Result<(), RecordsError> {
        self.texts().into_iter().try_for_each(|(field, value, max)| check_optional(field, value, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(before: Option<Classification>, after: Option<Classification>, to: Destination) -> Records {
        Records {
            organisation: None,
            site: None,
            asset_number: None,
            classification_before: before,
            classification_after: after,
            media_source: None,
            data_backed_up: BackedUp::Unknown,
            backup_location: None,
            destination: Some(to),
            operator: Person::default(),
            notes: None,
        }
    }

    #[test]
    fn classifications_parse_in_english_and_chinese_and_order_by_level() {
        assert_eq!("机密".parse::<Classification>().unwrap(), Classification::Secret);
        assert_eq!("Top Secret".parse::<Classification>().unwrap(), Classification::TopSecret);
        assert!("cosmic".parse::<Classification>().is_err());
        assert!(Classification::Confidential < Classification::Secret);
        assert!(!Classification::Unclassified.is_controlled());
    }

    #[test]
    fn classified_media_are_never_downgraded_or_released() {
        use Classification::*;
        let mut kept = records(Some(Secret), None, Destination::Destruction);
        kept.enforce_rules().unwrap();
        assert_eq!(kept.classification_after, Some(Secret));
        assert!(records(Some(Secret), Some(Internal), Destination::Destruction).enforce_rules().is_err());
        for to in [Destination::InternalReuse, Destination::ExternalReuse, Destination::Recycling] {
            assert!(records(Some(Internal), None, to).enforce_rules().is_err(), "{to:?}");
        }
        records(Some(Secret), None, Destination::Manufacturer).enforce_rules().unwrap();
        records(Some(Unclassified), None, Destination::ExternalReuse).enforce_rules().unwrap();
    }
}
