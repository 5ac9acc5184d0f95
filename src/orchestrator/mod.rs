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

/// A background loop: `step` at once, then again whenever events are committed or,
/// without one, after the wait the step returned, and never sooner than `gap` after
/// the previous step began. It ends when the store's event channel closes (the
/// server is going). A step logs its own failure and is tried again on the next
/// wake; one that keeps failing is surfaced by the step (see [`repeats`]).
pub fn step_loop<F, Fut>(
    mut events: tokio::sync::watch::Receiver<i64>,
    gap: std::time::Duration,
    mut step: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::time::Duration> + Send,
{
    tokio::spawn(async move {
        loop {
            let started = tokio::time::Instant::now();
            let wait = step().await;
            if let Ok(Err(_)) = tokio::time::timeout(wait, events.changed()).await {
                return;
            }
            tokio::time::sleep_until(started + gap).await;
        }
    })
}
