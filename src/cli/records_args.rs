//! The record-keeping flags of `wipe`, merged over a station profile.

use std::path::PathBuf;

use clap::Args;

use super::Failure;
use crate::cert::records::{BackedUp, Classification, Destination, Person, Profile, Records};

#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Certificate records")]
pub struct RecordArgs {
    /// Station profile (TOML) with defaults for the fields below [default: /etc/certwipe/profile.toml if present]
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    #[arg(long)]
    organisation: Option<String>,
    #[arg(long)]
    site: Option<String>,
    /// Ledger (台帐) or asset number; repeat once per target, in target order.
    #[arg(long = "asset", value_name = "NUMBER")]
    assets: Vec<String>,
    /// Classification before sanitization: unclassified/非密, internal/内部,
    /// confidential/秘密, secret/机密, top-secret/绝密.
    #[arg(long, value_name = "LEVEL")]
    classification: Option<String>,
    /// Classification after sanitization [default: the same; it can never be lower].
    #[arg(long, value_name = "LEVEL")]
    classification_after: Option<String>,
    /// The user or computer the medium came from.
    #[arg(long, value_name = "TEXT")]
    media_source: Option<String>,
    #[arg(long, value_parser = super::named::<BackedUp>())]
    data_backed_up: Option<BackedUp>,
    #[arg(long, value_name = "TEXT")]
    backup_location: Option<String>,
    /// Where the medium goes next; classified media may only go to destruction or the manufacturer.
    #[arg(long, value_parser = super::named::<Destination>())]
    destination: Option<Destination>,
    /// Name of the person who sanitized the medium.
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    #[arg(long, value_name = "TITLE")]
    operator_title: Option<String>,
    #[arg(long, value_name = "ID")]
    operator_id: Option<String>,
    #[arg(long, value_name = "CONTACT")]
    operator_contact: Option<String>,
    #[arg(long)]
    notes: Option<String>,
}

impl RecordArgs {
    /// The records for each of `targets` targets, checked against the rules,
    /// and the profile they were read with (one profile read).
    pub fn records_for(&self, targets: usize) -> Result<(Vec<Records>, Profile), Failure> {
        let profile = Profile::find(self.profile.as_deref())?;
        if !self.assets.is_empty() && self.assets.len() != targets {
            return Err(Failure::usage(format!(
                "{} --asset given for {targets} target(s); give one per target, in the same order",
                self.assets.len()
            )));
        }
        let level = |text: Option<&String>| -> Result<Option<Classification>, Failure> {
            text.map(|t| t.parse::<Classification>()).transpose().map_err(|e| Failure::usage(e.to_string()))
        };
        let pick = |flag: &Option<String>, default: &Option<String>| flag.clone().or_else(|| default.clone());
        let template = Records {
            organisation: pick(&self.organisation, &profile.organisation),
            site: pick(&self.site, &profile.site),
            asset_number: None,
            classification_before: level(self.classification.as_ref().or(profile.classification.as_ref()))?,
            classification_after: level(self.classification_after.as_ref())?,
            media_source: pick(&self.media_source, &profile.media_source),
            data_backed_up: self.data_backed_up.or(profile.data_backed_up).unwrap_or(BackedUp::Unknown),
            backup_location: pick(&self.backup_location, &profile.backup_location),
            destination: self.destination.or(profile.destination),
            operator: Person {
                name: pick(&self.operator, &profile.operator.name),
                title: pick(&self.operator_title, &profile.operator.title),
                id: pick(&self.operator_id, &profile.operator.id),
                contact: pick(&self.operator_contact, &profile.operator.contact),
            },
            notes: pick(&self.notes, &profile.notes),
        };
        let records = (0..targets)
            .map(|index| {
                let mut records = template.clone();
                records.asset_number = self.assets.get(index).cloned();
                records.enforce_rules().map_err(|e| Failure::usage(e.to_string()))?;
                Ok(records)
            })
            .collect::<Result<_, Failure>>()?;
        Ok((records, profile))
    }

    /// The station profile given (or the default one, or none).
    pub fn profile(&self) -> Result<Profile, Failure> {
        Ok(Profile::find(self.profile.as_deref())?)
    }

    /// Whether `--asset` was given.
    pub fn has_assets(&self) -> bool {
        !self.assets.is_empty()
    }
}
