//! How a running wipe shows itself: newline-delimited JSON on stdout for scripts,
//! a progress bar per target on a terminal, plain log lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::engine::events::{Event, Observer};
use crate::report::Phase;

/// How often progress is printed as JSON or plain text.
pub(super) const JSON_INTERVAL: Duration = Duration::from_secs(1);
pub(super) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Lets a line through at most once per interval (or when forced).
#[derive(Default)]
pub(super) struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    pub(super) fn due(&self, interval: Duration, force: bool) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let due = force || last.is_none_or(|t| t.elapsed() >= interval);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

pub enum Ui {
    Json,
    Bars(MultiProgress),
    Plain,
}

impl Ui {
    pub fn choose(json: bool) -> Ui {
        if json {
            Ui::Json
        } else if std::io::stderr().is_terminal() {
            Ui::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)))
        } else {
            Ui::Plain
        }
    }

    pub fn view(&self, name: &str, path: &str) -> TargetView<'_> {
        let bar = match self {
            Ui::Bars(multi) => {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} {msg:<50} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .expect("template is valid")
                    .progress_chars("=> "),
                );
                bar.set_prefix(name.to_string());
                Some(bar)
            }
            _ => None,
        };
        TargetView {
            ui: self,
            name: name.to_string(),
            path: path.to_string(),
            bar,
            last_print: Throttle::default(),
        }
    }

    /// A line for the operator that must not tear a progress bar.
    pub fn say(&self, line: &str) {
        match self {
            Ui::Bars(multi) => {
                let _ = multi.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }

    pub fn emit_json(value: &Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    /// One event line (docs/events.schema.json): its name, when (RFC 3339,
    /// UTC), which medium (`target`, `path`, and for a station its port and
    /// identity), then the event's own fields. `wipe`, `sanitize` and
    /// `station` all write through here, so their events share one shape.
    pub(super) fn emit_event(event: &str, medium: Value, fields: Value) {
        let mut line = json!({"event": event, "time": crate::report::now()});
        for part in [medium, fields] {
            if let (Some(object), Value::Object(extra)) = (line.as_object_mut(), part) {
                object.extend(extra);
            }
        }
        Ui::emit_json(&line);
    }
}

/// One target's view: receives its engine events.
pub struct TargetView<'a> {
    ui: &'a Ui,
    name: String,
    path: String,
    bar: Option<ProgressBar>,
    last_print: Throttle,
}

impl TargetView<'_> {
    /// Whether enough time has passed since the last throttled line.
    fn due(&self, interval: Duration, force: bool) -> bool {
        self.last_print.due(interval, force)
    }

    fn json(&self, event: &str, fields: Value) {
        Ui::emit_event(event, json!({"target": self.name, "path": self.path}), fields);
    }

    /// A drive's own erase reports a fraction (or nothing): a percentage bar,
    /// or a line every so often.
    fn drive_progress(&self, fraction: Option<f64>, elapsed: f64) {
        let text = match fraction {
            Some(f) => format!("drive erasing, {:.1} % after {elapsed:.0} s", f * 100.0),
            None => format!("drive erasing, {elapsed:.0} s (the drive reports no progress)"),
        };
        match &self.bar {
            Some(bar) => {
                if bar.length() != Some(1000) {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:.bold} {msg:<40} [{bar:30.cyan/blue}] {percent}%",
                        )
                        .expect("template is valid")
                        .progress_chars("=> "),
                    );
                    bar.set_length(1000);
                }
                bar.set_position(fraction.map_or(0, |f| (f * 1000.0) as u64));
                bar.set_message(text);
            }
            None => {
                if self.due(LOG_INTERVAL, false) {
                    self.ui.say(&format!("{}: {text}", self.name));
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// "1m 20s elapsed, 4m 10s left": left is for the whole run (every pass and
/// read-back still to come), not the current pass.
pub(super) fn timing(elapsed_seconds: f64, seconds_left: Option<f64>) -> String {
    let shown = |seconds: f64| humantime::format_duration(Duration::from_secs(seconds as u64)).to_string();
    match seconds_left {
        Some(left) => format!("{} elapsed, {} left", shown(elapsed_seconds), shown(left)),
        None => format!("{} elapsed", shown(elapsed_seconds)),
    }
}

fn phase_word(phase: Phase) -> &'static str {
    match phase {
        Phase::Writing => "writing",
        Phase::Verifying => "verifying",
    }
}

impl Observer for TargetView<'_> {
    fn event(&self, event: &Event<'_>) {
        match (self.ui, event) {
            (Ui::Json, Event::PhaseStarted { .. }) => {}
            (Ui::Json, Event::Progress { bytes_done, bytes_total, .. }) => {
                if self.due(JSON_INTERVAL, bytes_done == bytes_total) {
                    self.json("progress", serde_json::to_value(event).unwrap_or_default());
                }
            }
            (Ui::Json, Event::PassWritten { pass }) => {
                self.json("write-end", json!({"pass": pass.index, "bytes_written": pass.bytes_written}))
            }
            (Ui::Json, Event::PassFinished { pass }) => self.json("pass-end", json!({"pass": pass})),
            (Ui::Json, Event::VerificationFinished { pass, verification }) => {
                self.json("verification-end", json!({"pass": pass, "verification": verification}))
            }
            (Ui::Json, Event::Warning { message }) => self.json("warning", json!({"message": message})),
            (Ui::Json, Event::DriveStep { step }) => self.json("drive-step", json!({"step": step})),
            (Ui::Json, Event::DriveProgress { fraction, elapsed_seconds }) => {
                if self.due(JSON_INTERVAL, false) {
                    self.json(
                        "drive-progress",
                        json!({"fraction": fraction, "elapsed_seconds": elapsed_seconds}),
                    );
                }
            }
            (_, Event::DriveStep { step }) => self.ui.say(&format!("{}: {step}", self.name)),
            (_, Event::DriveProgress { fraction, elapsed_seconds }) => {
                self.drive_progress(*fraction, *elapsed_seconds)
            }
            (Ui::Json, Event::Finished { report }) => self.json(
                "done",
                json!({"status": report.status, "reason": report.status_reason, "report": report}),
            ),
            (_, Event::PhaseStarted { pass, passes, phase, content, bytes_total }) => {
                let what = format!("pass {pass}/{passes} {}", phase_word(*phase));
                match &self.bar {
                    Some(bar) => {
                        bar.set_length(*bytes_total);
                        bar.set_position(0);
                        bar.reset_eta();
                        bar.set_message(what);
                    }
                    None => {
                        let _ = self.due(LOG_INTERVAL, true);
                        eprintln!("{}: {what} ({}) {}", self.name, content, HumanBytes(*bytes_total));
                    }
                }
            }
            (
                _,
                Event::Progress {
                    pass,
                    passes,
                    phase,
                    bytes_done,
                    bytes_total,
                    bytes_per_second,
                    elapsed_seconds,
                    seconds_left,
                },
            ) => {
                let timing = timing(*elapsed_seconds, *seconds_left);
                match &self.bar {
                    Some(bar) => {
                        bar.set_position(*bytes_done);
                        bar.set_message(format!("pass {pass}/{passes} {} {timing}", phase_word(*phase)));
                    }
                    None if self.due(LOG_INTERVAL, false) => eprintln!(
                        "{}: pass {pass}/{passes} {} {:.1}% ({}/{}) {}/s, {timing}",
                        self.name,
                        phase_word(*phase),
                        100.0 * *bytes_done as f64 / (*bytes_total).max(1) as f64,
                        HumanBytes(*bytes_done),
                        HumanBytes(*bytes_total),
                        HumanBytes(*bytes_per_second as u64)
                    ),
                    None => {}
                }
            }
            (_, Event::PassFinished { .. }) => {}
            (_, Event::PassWritten { pass }) => self.ui.say(&format!(
                "{}: pass {} written: {} at {}/s{}",
                self.name,
                pass.index,
                HumanBytes(pass.bytes_written),
                HumanBytes(pass.bytes_per_second as u64),
                if pass.completed { "" } else { " (not completed)" }
            )),
            (_, Event::VerificationFinished { pass, verification }) => self.ui.say(&format!(
                "{}: pass {pass} verification {}: {} read ({:.1}% of the medium)",
                self.name,
                verification.result,
                HumanBytes(verification.bytes_read),
                verification.coverage * 100.0
            )),
            (_, Event::Warning { message }) => self.ui.say(&format!("{}: warning: {message}", self.name)),
            (_, Event::Finished { .. }) => self.finish(),
        }
    }
}

/// A cell a spreadsheet shows as text: one starting with `=`, `+`, `-`, `@`,
/// tab or CR would be read as a formula, so it is prefixed with `'`.
pub fn spreadsheet_cell(text: String) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text,
    }
}
