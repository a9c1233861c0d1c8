//! certwipe: verified overwrite of block devices and image files, with a
//! signed certificate that says exactly what was done and what was proved.
//!
//! The flow, top-down (docs/design.md draws it): [`cli`] parses a command and
//! only talks; [`target`] turns the arguments into checked settings and runs a
//! target's whole life: [`device`] finds and inspects the targets and refuses
//! unsafe ones; [`method`] turns a method name into a plan of passes;
//! [`engine`] runs the plan over an opened [`device::Medium`] with data from
//! [`stream`] and returns a [`report::Report`], or [`drive`] and [`purge`]
//! erase through the drive's own commands and prove it; [`cert`] makes the
//! certificate and judges every certificate ([`cert::judge`]); [`ledger`]
//! files it under the medium's rules (`ledger::history`); [`station`] does
//! the same for every USB medium plugged in; [`serve`] shows the ledger to
//! the records office. [`report`], [`names`], [`text`], [`input`],
//! [`durable`] and [`exit`] are the shared vocabulary and the rules for what
//! is shown, read, written and returned.

pub mod buffer;
pub mod cert;
pub mod cli;
pub mod device;
pub mod drive;
pub mod durable;
pub mod engine;
pub mod exit;
pub mod input;
pub mod ledger;
pub mod method;
pub mod names;
pub mod purge;
pub mod report;
pub mod sanitization;
pub mod serve;
pub mod station;
pub mod stream;
pub mod target;
pub mod text;
