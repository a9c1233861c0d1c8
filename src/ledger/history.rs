//! A medium's history under the ledger's rules, entry by entry. The same
//! rules decide whether certwipe may append an entry and whether an entry
//! already in the ledger is one certwipe could have written: an entry signed
//! by hand with a writer's key (a station operator's, say) gains nothing a
//! command would have refused, because `verify`, every write and every list
//! replay the history through [`History::apply`].

use std::collections::BTreeSet;

use serde_json::Value;

use super::store::EntryRow;
use super::{LedgerError, Medium, chain, trust};
use crate::cert::judge;
use crate::cert::records::{Classification, Destination};
use crate::cert::sign::{AllowedSigners, Duty};

/// The kinds of entry a medium's history may hold.
const KINDS: [&str; 7] =
    ["register", "certificate", "reclassify", "countersignature", "approval", "disposal", "destruction"];

/// Why an entry breaks the rules at its place in the history.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Broken {
    /// Something is recorded about a destroyed medium.
    AfterDestruction,
    /// A destruction without an approval by anyone but its recorder.
    NotApproved,
    Rule(String),
}

impl Broken {
    /// As the error of a write about medium `number`.
    pub(super) fn refusal(self, number: &str) -> LedgerError {
        match self {
            Broken::AfterDestruction => LedgerError::AlreadyDestroyed(number.to_string()),
            Broken::NotApproved => LedgerError::NotApproved(number.to_string()),
            Broken::Rule(why) => LedgerError::Refused(why),
        }
    }

    /// As a problem found in entry `e` of the history.
    pub(super) fn problem(&self, e: &EntryRow) -> String {
        let why = match self {
            Broken::AfterDestruction => format!("a {} after its destruction", e.kind),
            Broken::NotApproved => "a destruction without an approval on record".to_string(),
            Broken::Rule(why) => why.clone(),
        };
        format!("entry {} ({} of medium {}): {why}", e.seq, e.kind, e.number)
    }
}

/// A medium as its history, replayed so far, leaves it.
pub(super) struct History<'a> {
    ledger_id: &'a str,
    /// Without a trust root, who signed is unknown: approvals recorded by a
    /// station's key cannot be told from the records office's.
    anchor: Option<&'a AllowedSigners>,
    pub medium: Option<Medium>,
    destroyed: bool,
    /// The certificates filed under the medium, by id.
    certificates: BTreeSet<String>,
    approvals: Vec<Approval>,
}

/// How an approver's approval (审批) is on record.
enum Approval {
    /// An approver's countersignature, made with the approver's own key.
    Countersigned,
    /// An approval entry, recorded by the key with this fingerprint.
    RecordedBy(String),
}

impl<'a> History<'a> {
    pub(super) fn new(ledger_id: &'a str, anchor: Option<&'a AllowedSigners>) -> History<'a> {
        History {
            ledger_id,
            anchor,
            medium: None,
            destroyed: false,
            certificates: BTreeSet::new(),
            approvals: Vec::new(),
        }
    }

    pub(super) fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// The certificates filed under the medium so far.
    pub(super) fn certificates(&self) -> &BTreeSet<String> {
        &self.certificates
    }

    /// Applies `e` if the rules allow it here; the history is unchanged when
    /// they do not.
    pub(super) fn apply(&mut self, e: &EntryRow) -> Result<(), Broken> {
        let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
        if !KINDS.contains(&e.kind.as_str()) {
            return Err(Broken::Rule(format!(
                "{:?} is not a kind of entry a medium's history holds",
                e.kind
            )));
        }
        let Some(medium) = &self.medium else {
            return match e.kind.as_str() {
                "register" => {
                    let registered = serde_json::from_value(data)
                        .map_err(|_| Broken::Rule("an unreadable registration".into()))?;
                    self.medium = Some(registered);
                    Ok(())
                }
                _ => Err(Broken::Rule("the medium was never registered before it".into())),
            };
        };
        let level = medium.classification;
        if self.destroyed && e.kind != "approval" && e.kind != "countersignature" {
            return Err(Broken::AfterDestruction);
        }
        match e.kind.as_str() {
            "register" => Err(Broken::Rule("it registers the medium a second time".into())),
            "certificate" => self.certificate(&data),
            "reclassify" => self.reclassify(&data, level),
            "countersignature" => self.countersignature(&data),
            "approval" => {
                if data["role"] == "approver"
                    && self.counts_as_approver(e)
                    && let Some(by) = self.signer(e)
                {
                    self.approvals.push(Approval::RecordedBy(by));
                }
                Ok(())
            }
            "disposal" => disposal(&data, medium),
            "destruction" => self.destruction(e, &data),
            _ => unreachable!("every kind in KINDS is handled"),
        }
    }

    /// A certificate entry names the certificate filed with it, and raises
    /// the medium to the highest level the certificate records.
    fn certificate(&mut self, data: &Value) -> Result<(), Broken> {
        let (Some(id), Some(_)) = (data["certificate_id"].as_str(), data["sha256"].as_str()) else {
            return Err(Broken::Rule("it names no filed certificate (id and SHA-256)".into()));
        };
        let level = |field: &str| data[field].as_str().and_then(|t| t.parse::<Classification>().ok());
        let medium = self.medium.as_mut().expect("checked by apply");
        if let Some(recorded) = level("classification_before").max(level("classification_after")) {
            medium.classification = medium.classification.max(recorded);
        }
        self.certificates.insert(id.to_string());
        Ok(())
    }

    /// A reclassification only ever raises, for a certificate filed before it.
    fn reclassify(&mut self, data: &Value, level: Classification) -> Result<(), Broken> {
        let to = data["to"].as_str().and_then(|t| t.parse::<Classification>().ok());
        let Some(to) = to.filter(|to| *to >= level) else {
            return Err(Broken::Rule("a reclassification that lowers the medium".into()));
        };
        if !data["certificate_id"].as_str().is_some_and(|id| self.certificates.contains(id)) {
            return Err(Broken::Rule("a reclassification for no certificate filed under the medium".into()));
        }
        self.medium.as_mut().expect("checked by apply").classification = to;
        Ok(())
    }

    /// A countersignature belongs to a certificate filed under the medium
    /// before it, and names its statement (whose signatures `verify` and
    /// every write judge from the store).
    fn countersignature(&mut self, data: &Value) -> Result<(), Broken> {
        if !data["certificate_id"].as_str().is_some_and(|id| self.certificates.contains(id)) {
            return Err(Broken::Rule("a countersignature of no certificate filed under the medium".into()));
        }
        if data["role"] == "approver" && data["statement_sha256"].is_string() {
            self.approvals.push(Approval::Countersigned);
        }
        Ok(())
    }

    /// Nobody approves his own scrapping: a destruction needs an approver's
    /// countersignature, or an approval recorded by another key than the one
    /// recording the destruction. The witness (监销) is someone else.
    fn destruction(&mut self, e: &EntryRow, data: &Value) -> Result<(), Broken> {
        let recorder = self.signer(e);
        let approved = self.approvals.iter().any(|approval| match approval {
            Approval::Countersigned => true,
            Approval::RecordedBy(by) => recorder.as_ref().is_some_and(|recorder| recorder != by),
        });
        if !approved {
            return Err(Broken::NotApproved);
        }
        let (destroyer, witness) = (data["destroyer"].as_str(), data["witness"].as_str());
        let (Some(destroyer), Some(witness)) = (destroyer, witness) else {
            return Err(Broken::Rule("a destruction that names no destroyer or witness".into()));
        };
        if crate::text::same_person(destroyer, witness) {
            return Err(Broken::Rule(format!(
                "the destroyer and the witness are both {destroyer:?}: the supervisor (监销) must be someone else"
            )));
        }
        self.destroyed = true;
        Ok(())
    }

    /// The fingerprint of the key that signed `e` (its signature intact).
    fn signer(&self, e: &EntryRow) -> Option<String> {
        let at = chain::entry_time(e);
        trust::entry_signature(e, self.ledger_id, None, at)?.ok().map(|good| good.fingerprint)
    }

    /// An approver's approval recorded in the ledger counts when the key that
    /// recorded it is not a station's: a station could otherwise approve the
    /// scrapping another station records. Without a trust root nobody can
    /// tell, and `verify` says signers were not checked.
    fn counts_as_approver(&self, e: &EntryRow) -> bool {
        let Some(anchor) = self.anchor else { return true };
        let at = chain::entry_time(e);
        let Some(Ok(good)) = trust::entry_signature(e, self.ledger_id, None, at) else { return false };
        let Ok(key) = ssh_key::PublicKey::from_openssh(&good.public_key) else { return false };
        anchor.authorize(&key, None, Duty::Station.namespace(), at).is_err()
    }
}

/// A disposal may not release a medium its level keeps.
fn disposal(data: &Value, medium: &Medium) -> Result<(), Broken> {
    let destination: Destination = serde_json::from_value(data["destination"].clone())
        .map_err(|_| Broken::Rule("a disposal to no known destination".into()))?;
    let problems =
        judge::level_problems(&medium.number, medium.classification, None, None, Some(destination));
    if problems.is_empty() { Ok(()) } else { Err(Broken::Rule(problems.join("; "))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, kind: &str, data: &str) -> EntryRow {
        EntryRow {
            seq,
            number: "M-1".into(),
            kind: kind.into(),
            at: "2026-12-01T00:00:00.000Z".into(),
            data: data.into(),
            prev_hash: String::new(),
            hash: String::new(),
            signature: None,
        }
    }

    const REGISTER: &str = r#"{"number":"M-1","media_type":"hdd","classification":"secret","holder":null,"serial":null,"notes":null}"#;

    #[test]
    fn the_history_keeps_the_rules_a_write_keeps() {
        let mut history = History::new("ledger", None);
        assert!(history.apply(&entry(1, "approval", "{}")).is_err(), "nothing before the registration");
        history.apply(&entry(1, "register", REGISTER)).unwrap();
        assert!(history.apply(&entry(2, "register", REGISTER)).is_err());
        let release = entry(2, "disposal", r#"{"destination":"external-reuse"}"#);
        assert!(matches!(history.apply(&release), Err(Broken::Rule(why)) if why.contains("external-reuse")));
        let lower = entry(2, "reclassify", r#"{"to":"unclassified","certificate_id":"c"}"#);
        assert!(history.apply(&lower).is_err());
        let orphan = entry(
            2,
            "countersignature",
            r#"{"certificate_id":"c","role":"approver","statement_sha256":"x"}"#,
        );
        assert!(history.apply(&orphan).is_err(), "a countersignature of no filed certificate");
        let destroy = entry(2, "destruction", r#"{"destroyer":"Li Wei","witness":"Zhang San"}"#);
        assert_eq!(history.apply(&destroy), Err(Broken::NotApproved));
        // An unsigned approval names no recorder, so it approves nothing.
        history.apply(&entry(2, "approval", r#"{"role":"approver","name":"Chen Jie"}"#)).unwrap();
        assert_eq!(history.apply(&destroy), Err(Broken::NotApproved));
        history.apply(&entry(3, "certificate", r#"{"certificate_id":"c","sha256":"s"}"#)).unwrap();
        history.apply(&orphan).unwrap();
        let same = entry(5, "destruction", r#"{"destroyer":"Li Wei","witness":"LI  W\u0435I"}"#);
        assert!(matches!(history.apply(&same), Err(Broken::Rule(why)) if why.contains("someone else")));
        history.apply(&destroy).unwrap();
        assert!(history.is_destroyed());
        assert_eq!(history.apply(&release), Err(Broken::AfterDestruction));
    }
}
