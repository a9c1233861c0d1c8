//! How a station shows itself: one row per port on a terminal (waiting · wiping
//! pass 2/3 47 % 38 MB/s ETA 4 min · verifying · done — remove · failed (reason) ·
//! refused (reason)), newline-delimited JSON events with `--json` in wipe's
//! schema (`ready`, `arrived`, `refused`, `started`, `progress`, `note`,
//! `done`, `removed`: docs/events.schema.json), plain lines otherwise.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::output::{JSON_INTERVAL, LOG_INTERVAL, Throttle, Ui};
use crate::cert::display::escape;
use crate::engine::events::{Event, Observer};
use crate::report::Phase;
use crate::station::scan::Seen;
use crate::target::{Outcome, Prepared};

pub enum RowState {
    Done,
    Failed(String),
}

pub struct Rows {
    ui: Ui,
    /// One bar per port, made when the port first shows a medium.
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

const BAR_INTERVAL: Duration = Duration::from_millis(250);

impl Rows {
    pub fn choose(json: bool) -> Rows {
        Rows { ui: Ui::choose(json), bars: Mutex::new(BTreeMap::new()) }
    }

    /// A station's event names its medium as `wipe` does (`target`, `path`),
    /// and adds where it is plugged in and what it says it is.
    fn event(&self, event: &str, seen: &Seen, fields: Value) {
        let medium = json!({
            "target": seen.name,
            "path": format!("/dev/{}", seen.name),
            "port": seen.port(),
            "serial": seen.serial,
            "size_bytes": seen.size_bytes,
        });
        Ui::emit_event(event, medium, fields);
    }

    /// Sets a port's row (terminal) or prints its line (plain).
    fn set(&self, seen: &Seen, message: &str) {
        let port = seen.port();
        match &self.ui {
            Ui::Bars(multi) => {
                let mut bars = crate::engine::lock(&self.bars);
                let bar = bars.entry(port.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:<10.bold} {msg}").expect("template is valid"),
                    );
                    bar.set_prefix(port);
                    bar
                });
                bar.set_message(message.to_string());
            }
            Ui::Plain => eprintln!("{port}: {message}"),
            Ui::Json => {}
        }
    }

    pub fn say(&self, line: &str) {
        self.ui.say(line);
    }

    /// The station watches for media now.
    pub fn ready(&self, protected: usize) {
        match self.ui {
            Ui::Json => Ui::emit_event("ready", json!({}), json!({"protected": protected})),
            _ => self.say(&format!(
                "station: ready — plug in media ({protected} device(s) left alone); Ctrl-C ends"
            )),
        }
    }

    pub fn arrived(&self, seen: &Seen) {
        match self.ui {
            Ui::Json => self.event("arrived", seen, json!({})),
            _ => self.set(seen, &format!("/dev/{} {} arrived", seen.name, HumanBytes(seen.size_bytes))),
        }
    }

    pub fn started(&self, seen: &Seen, prepared: &Prepared) {
        let plan = prepared.plan().expect("a station only overwrites");
        let resuming = prepared.resuming();
        match self.ui {
            Ui::Json => self.event(
                "started",
                seen,
                json!({"method": plan.method, "passes": plan.passes.len(), "resuming": resuming}),
            ),
            _ => self.set(
                seen,
                &format!(
                    "{} ({}){}",
                    plan.method,
                    plan.passes.len(),
                    if resuming { ", resuming" } else { "" }
                ),
            ),
        }
    }

    pub fn refused(&self, seen: &Seen, reason: &str) {
        let reason = escape(reason);
        match self.ui {
            Ui::Json => self.event("refused", seen, json!({"reason": reason})),
            _ => self.set(seen, &format!("refused ({reason}) — left alone")),
        }
    }

    pub fn note(&self, seen: &Seen, text: &str) {
        match self.ui {
            Ui::Json => self.event("note", seen, json!({"message": text})),
            _ => self.say(&format!("{}: {text}", seen.port())),
        }
    }

    pub fn removed(&self, seen: &Seen, while_wiping: bool) {
        match self.ui {
            Ui::Json => self.event("removed", seen, json!({"while_wiping": while_wiping})),
            _ if while_wiping => {
                self.set(seen, "REMOVED while wiping — it ends failed; plug it in again to resume")
            }
            _ => self.set(seen, "waiting"),
        }
    }

    /// How a medium's wipe ended. `pulled`: it was removed while its wipe
    /// ran; an erased one then finished before the removal was noticed, and
    /// the event and the row say so rather than contradict the `removed`.
    pub fn finished(&self, seen: &Seen, state: RowState, outcome: &Outcome, pulled: bool) {
        let report = &outcome.report;
        let certificate = outcome.certificate.as_ref().and_then(|c| c.as_ref().ok());
        match (&self.ui, &state) {
            (Ui::Json, _) => self.event(
                "done",
                seen,
                json!({
                    "status": report.status,
                    "reason": report.status_reason,
                    "erased_and_recorded": outcome.succeeded(),
                    "certificate": certificate,
                    "problems": outcome.step_errors().map(|e| e.to_string()).collect::<Vec<_>>(),
                    "pulled_while_wiping": pulled,
                    "finished_before_pulled": pulled && report.status == crate::report::Status::Erased,
                }),
            ),
            (_, RowState::Done) if pulled => {
                self.set(seen, "done — it finished writing and verifying before it was pulled")
            }
            (_, RowState::Done) => self.set(seen, "done — remove"),
            (_, RowState::Failed(reason)) => {
                self.set(seen, &format!("{} ({})", report.status.as_str().to_uppercase(), escape(reason)))
            }
        }
    }

    /// The engine's events for one medium, shown on its row.
    pub fn view<'a>(&'a self, seen: &Seen) -> RowView<'a> {
        RowView { rows: self, seen: seen.clone(), last: Throttle::default() }
    }
}

pub struct RowView<'a> {
    rows: &'a Rows,
    seen: Seen,
    last: Throttle,
}

impl Observer for RowView<'_> {
    fn event(&self, event: &Event<'_>) {
        let Event::Progress {
            pass,
            passes,
            phase,
            bytes_done,
            bytes_total,
            bytes_per_second,
            elapsed_seconds,
            seconds_left,
        } = *event
        else {
            if let Event::Warning { message } = event {
                self.rows.note(&self.seen, message);
            }
            return;
        };
        let word = match phase {
            Phase::Writing => "wiping",
            Phase::Verifying => "verifying",
        };
        let percent = 100.0 * bytes_done as f64 / bytes_total.max(1) as f64;
        match &self.rows.ui {
            Ui::Json if self.last.due(JSON_INTERVAL, bytes_done == bytes_total) => {
                self.rows.event("progress", &self.seen, serde_json::to_value(event).unwrap_or_default())
            }
            Ui::Json => {}
            Ui::Plain if !self.last.due(LOG_INTERVAL, false) => {}
            // Progress arrives per chunk, under the engine's lock; a terminal redraws 4 times a second.
            Ui::Bars(_) if !self.last.due(BAR_INTERVAL, bytes_done == bytes_total) => {}
            _ => {
                let timing = super::output::timing(elapsed_seconds, seconds_left);
                let rate = HumanBytes(bytes_per_second as u64);
                self.rows.set(
                    &self.seen,
                    &format!("{word} pass {pass}/{passes} {percent:.0} % {rate}/s, {timing}"),
                );
            }
        }
    }
}
