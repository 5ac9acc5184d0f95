//! The orchestrator: the background work that moves spec tasks along — for now
//! planning (a planning agent writes the spec, spectask validates and commits it as a
//! version) and spec review (approve, request changes, reject).

pub mod attention;
pub mod changes;
pub mod cluster;
pub mod implementation;
pub mod import;
pub mod inbox;
pub mod planning;
pub mod progress;
pub mod repeats;
pub mod review;
pub mod spec_files;
pub mod webhooks;

/// The longest a background loop waits without an event before it steps again.
pub const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
