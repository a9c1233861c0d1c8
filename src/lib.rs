//! certwipe: verified overwrite of block devices and image files, with a report
//! that says exactly what was done and what was proved.
//!
//! The flow, top-down: [`cli`] parses a command; [`device`] finds and inspects the
//! targets and refuses unsafe ones; [`method`] turns a method name into a plan of
//! passes; [`engine`] runs the plan over an opened [`device::Medium`], with data from
//! [`stream`], and returns an [`engine::report::Report`].

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
