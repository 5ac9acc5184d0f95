//! Randomized whole runs, in the spirit of simulation testing: from one seed, a plan
//! (1 to 30 tasks, `_Depends:_`, `(P)` markers, sometimes a spec-kit plan with
//! `## Phase N` barriers), what the agent does in each task (a change, nothing, an
//! untracked file, a deletion, `tasks.md` alone, its own commits, a branch reset,
//! conflicting writes, a crash or a hang on every attempt or the first only, slow
//! work), the project's settings (set at creation and by PATCH), a person's actions
//! at moments of the run (retry/skip/cancel of sessions and tasks, spawns,
//! messages, cancelling the task) and faults (the agent killed, the server
//! SIGKILLed and restarted) — run to the end against the real `spectask serve`
//! binary, the scripted agent and real git; then the invariants are checked
//! (`runs/check.rs`). Generation is `runs/gen.rs`; only timing is not from the seed.
//!
//! `cargo test --test runs` runs a batch: `SPECTASK_RUNS_SEEDS` (default 50) seeds
//! from `SPECTASK_RUNS_BASE` (default 1), `SPECTASK_RUNS_JOBS` (default 3) at a time.
//! `SPECTASK_RUNS_SEED=N` replays one seed; `SPECTASK_RUNS_VERBOSE=1` prints every
//! seed's scenario and actions, not only failing ones; `SPECTASK_RUNS_MAX_TASKS`
//! caps plan sizes; `SPECTASK_RUNS_BOUND_SECS` (default 120) is how long a run may
//! take. `scripts/soak N` runs N seeds. A failing seed prints the command that
//! replays it, its scenario, the person's actions and the task's status changes.

mod common;

#[path = "runs/check.rs"]
mod check;
#[path = "runs/gen.rs"]
mod generate;
#[path = "runs/server.rs"]
mod server;

use futures::StreamExt;

/// Runs at the same time (each its own server, agent and repository);
/// `SPECTASK_RUNS_JOBS` overrides it.
const CONCURRENT: usize = 3;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_runs_end_and_keep_every_invariant() {
    let seeds: Vec<u64> = match env_u64("SPECTASK_RUNS_SEED") {
        Some(seed) => vec![seed],
        None => {
            let base = env_u64("SPECTASK_RUNS_BASE").unwrap_or(1);
            let count = env_u64("SPECTASK_RUNS_SEEDS").unwrap_or(50);
            (base..base + count).collect()
        }
    };
    let total = seeds.len();
    let batch = std::time::Instant::now();
    let results: Vec<(u64, Result<String, String>)> = futures::stream::iter(seeds)
        .map(|seed| async move {
            let started = std::time::Instant::now();
            let result = check::run_seed(seed).await;
            eprintln!(
                "seed {seed}: {} in {:.1} s",
                match &result {
                    Ok(end) => end.as_str(),
                    Err(_) => "VIOLATION",
                },
                started.elapsed().as_secs_f64()
            );
            (seed, result)
        })
        .buffer_unordered(env_u64("SPECTASK_RUNS_JOBS").map_or(CONCURRENT, |j| j.max(1) as usize))
        .collect()
        .await;
    let mut ended = 0;
    let mut violations = Vec::new();
    let mut by_end: std::collections::BTreeMap<String, usize> = Default::default();
    for (seed, result) in results {
        match result {
            Ok(end) => {
                ended += 1;
                *by_end.entry(end).or_default() += 1;
            }
            Err(why) => {
                if !why.starts_with("the run did not end") {
                    ended += 1;
                }
                violations.push((seed, why));
            }
        }
    }
    violations.sort_by_key(|(seed, _)| *seed);
    for (seed, why) in &violations {
        eprintln!(
            "\nseed {seed} broke an invariant:\n{why}\nreplay: SPECTASK_RUNS_SEED={seed} cargo test --test runs -- --nocapture\n"
        );
    }
    println!(
        "runs: {total} seeds run, {ended} ended ({by_end:?}), {} invariant violations{}, in {:.0} s",
        violations.len(),
        if violations.is_empty() {
            String::new()
        } else {
            format!(
                " (seeds {})",
                violations
                    .iter()
                    .map(|(s, _)| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        batch.elapsed().as_secs_f64()
    );
    assert!(violations.is_empty(), "{} seeds failed", violations.len());
}

/// The checks themselves catch what they are for: a status change no lifecycle
/// allows, a broken chain, a first change from the wrong status.
#[test]
fn the_event_checks_refuse_what_the_lifecycles_do_not_allow() {
    let change = |id: i64, entity: &str, from: &str, to: &str| {
        serde_json::json!({
            "id": id, "kind": format!("{entity}.status_changed"), "entity_id": 1,
            "data": { "from": from, "to": to },
        })
    };
    let good = [
        change(1, "spec_task", "backlog", "spec_review"),
        change(2, "spec_task", "spec_review", "implementing"),
        change(3, "work_session", "pending", "running"),
        change(4, "work_session", "running", "verifying"),
        change(5, "implementation_task", "pending", "in_progress"),
        change(6, "spec_task", "implementing", "failed"),
        change(7, "spec_task", "failed", "implementing"),
    ];
    let mut problems = Vec::new();
    check::check_events(&good, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    for bad in [
        vec![change(1, "work_session", "pending", "completed")],
        vec![change(1, "work_session", "running", "verifying")],
        vec![
            change(1, "implementation_task", "pending", "in_progress"),
            change(2, "implementation_task", "pending", "in_progress"),
        ],
        vec![change(1, "spec_task", "backlog", "done")],
    ] {
        let mut problems = Vec::new();
        check::check_events(&bad, &mut problems);
        assert!(!problems.is_empty(), "{bad:?} passed");
    }
}

/// A seed makes the same run every time.
#[test]
fn a_seed_makes_the_same_scenario() {
    for seed in 0..200 {
        let (a, b) = (generate::generate(seed, 30), generate::generate(seed, 30));
        assert_eq!(a.describe(), b.describe());
        assert_eq!(a.tasks_md(), b.tasks_md());
        assert!((1..=30).contains(&a.tasks.len()));
    }
}
