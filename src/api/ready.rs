//! `GET /readyz`: whether this replica can do its work: its database answers and
//! its background loops are alive. A loop is a tokio task that only ends when its
//! store's event channel closes or it panics, so "its task has not finished" is the
//! liveness signal, at no cost to the loop itself.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;

/// How long the database may take to answer before the replica counts as not ready:
/// a probe must answer even when the pool is stuck.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopState {
    Running,
    /// Its task ended (it panicked, or its store went away): the replica is not ready.
    Stopped,
    /// Not started in this process (`background = false`): not a fault.
    Disabled,
}

enum Entry {
    Task(tokio::task::AbortHandle),
    Disabled,
}

/// The background loops of this process, by name, as `App` starts them.
#[derive(Default)]
pub struct Loops {
    entries: Mutex<BTreeMap<&'static str, Entry>>,
}

impl Loops {
    pub fn watch(&self, name: &'static str, task: &tokio::task::JoinHandle<()>) {
        self.lock().insert(name, Entry::Task(task.abort_handle()));
    }

    pub fn disabled(&self, name: &'static str) {
        self.lock().insert(name, Entry::Disabled);
    }

    pub fn report(&self) -> BTreeMap<&'static str, LoopState> {
        self.lock()
            .iter()
            .map(|(name, entry)| {
                let state = match entry {
                    Entry::Task(handle) if handle.is_finished() => LoopState::Stopped,
                    Entry::Task(_) => LoopState::Running,
                    Entry::Disabled => LoopState::Disabled,
                };
                (*name, state)
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    /// `ok`, or `unavailable` (the detail goes to the log, not to an anonymous caller).
    database: &'static str,
    loops: BTreeMap<&'static str, LoopState>,
}

/// 200 `{"ready": true, "database": "ok", "loops": {...}}` when the database answers
/// a query and no background loop has stopped; 503 with the same shape saying
/// what is missing otherwise.
///
/// Like `/healthz`, it needs no credential, an exception to "every route requires a
/// credential": it is for load balancers and orchestrators' probes, which carry
/// none, and it says only `ok`/`unavailable` and loop states, nothing about tasks
/// or errors. Like `/healthz`, it is outside `/api/v1` and its document.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(DATABASE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: the database did not answer");
            "unavailable"
        }
        Err(_) => {
            tracing::warn!("readyz: the database did not answer in time");
            "unavailable"
        }
    };
    let loops = state.loops.report();
    let ready = database == "ok" && !loops.values().any(|s| *s == LoopState::Stopped);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready,
        database,
        loops,
    };
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finished_loop_is_stopped() {
        let loops = Loops::default();
        let alive = tokio::spawn(std::future::pending::<()>());
        let mut ended = tokio::spawn(async {});
        loops.watch("alive", &alive);
        loops.watch("ended", &ended);
        loops.disabled("off");
        let _ = (&mut ended).await;
        // `is_finished` is true once the task's future is done, which awaiting saw.
        let report = loops.report();
        assert_eq!(report["alive"], LoopState::Running);
        assert_eq!(report["ended"], LoopState::Stopped);
        assert_eq!(report["off"], LoopState::Disabled);
        alive.abort();
    }
}
