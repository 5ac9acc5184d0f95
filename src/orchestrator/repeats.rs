//! Repeated failures of a background step. A step that fails is retried on the next
//! event or reconcile tick; one that fails the same way again and again is not
//! retried blindly forever: after [`STUCK_AFTER`] identical failures in a row, or
//! identical failures for longer than [`STUCK_FOR`], its loop gives up on the task
//! and moves it to a state a person sees (`failed`, with the phase and the error).

use crate::domain::ids::*;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Identical failures in a row after which a step gives up.
pub const STUCK_AFTER: u32 = 5;
/// How long identical failures may go on before a step gives up.
pub const STUCK_FOR: Duration = Duration::from_secs(60);

struct Streak {
    error: String,
    count: u32,
    since: Instant,
}

/// The current streak of identical failures, per spec task.
#[derive(Default)]
pub struct Repeats {
    streaks: Mutex<HashMap<SpecTaskId, Streak>>,
}

impl Repeats {
    /// Records a failure of `task`'s step. Returns how many identical failures in a
    /// row there were when it is time to give up (the streak is then forgotten).
    pub fn failed(&self, task: SpecTaskId, error: &str) -> Option<u32> {
        let mut streaks = self.streaks.lock().unwrap_or_else(|p| p.into_inner());
        let streak = streaks.entry(task).or_insert_with(|| Streak {
            error: error.to_string(),
            count: 0,
            since: Instant::now(),
        });
        if streak.error != error {
            *streak = Streak {
                error: error.to_string(),
                count: 0,
                since: Instant::now(),
            };
        }
        streak.count += 1;
        let give_up = streak.count >= STUCK_AFTER
            || (streak.count > 1 && streak.since.elapsed() >= STUCK_FOR);
        if give_up {
            let count = streak.count;
            streaks.remove(&task);
            Some(count)
        } else {
            None
        }
    }

    /// A step of `task` went through: its streak ends.
    pub fn succeeded(&self, task: SpecTaskId) {
        self.streaks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&task);
    }
}

/// The reason a task that gave up fails with.
pub fn stuck_reason(phase: &str, count: u32, error: &str) -> String {
    format!("stuck: the {phase} step failed the same way {count} times in a row: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_identical_failures_only() {
        let r = Repeats::default();
        for _ in 1..STUCK_AFTER {
            assert_eq!(r.failed(SpecTaskId(1), "boom"), None);
        }
        // Another error starts a new streak; another task has its own.
        assert_eq!(r.failed(SpecTaskId(1), "other"), None);
        assert_eq!(r.failed(SpecTaskId(2), "boom"), None);
        for _ in 2..STUCK_AFTER {
            assert_eq!(r.failed(SpecTaskId(1), "other"), None);
        }
        assert_eq!(r.failed(SpecTaskId(1), "other"), Some(STUCK_AFTER));
        // Given up: the streak starts over.
        assert_eq!(r.failed(SpecTaskId(1), "other"), None);
        r.succeeded(SpecTaskId(1));
        for _ in 1..STUCK_AFTER {
            assert_eq!(r.failed(SpecTaskId(1), "other"), None);
        }
    }
}
