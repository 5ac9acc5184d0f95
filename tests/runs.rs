//! Randomized whole runs, in the spirit of simulation testing: from one seed, a plan
//! (size, dependencies, `(P)` markers), what the agent does in each task, the
//! project's settings, a person's actions and faults (the agent killed, the server
//! SIGKILLed and restarted) — run to the end against the real `spectask serve`
//! binary, the scripted agent and real git; then the invariants are checked.
//!
//! `cargo test --test runs` runs a batch (`SPECTASK_RUNS_SEEDS`, default 50, from
//! `SPECTASK_RUNS_BASE`, default 1); `SPECTASK_RUNS_SEED=N` replays one seed;
//! `scripts/soak N` runs N seeds. A failing seed prints the command that replays it.

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
