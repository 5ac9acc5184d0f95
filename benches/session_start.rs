//! `cargo bench --bench session_start`: a plan of 50 independent tasks with max
//! parallel 50 and the scripted agent making one small edit each. Reports the time
//! from approval to all 50 sessions started (their prompt sent), and spectask's cost
//! per session start divided by a bare `git worktree add` plus a process spawn,
//! measured in the same run (the goal is 1.5 or less).

#[path = "../tests/common/db.rs"]
#[allow(dead_code)]
mod db;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use db::{Backend, TestDb};
use spectask::agents::profile::AgentProfile;
use spectask::config::ServeConfig;
use spectask::domain::*;
use spectask::store::{NewProject, NewSpecTask};

const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const TASKS: usize = 50;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@b")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@b")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The baseline: what any tool must do per session — a worktree on a new branch
/// and an agent process (here the same scripted agent, asked for its version).
fn baseline(repo: &Path, dir: &Path) -> Duration {
    let start = Instant::now();
    for i in 0..TASKS {
        let path = dir.join(format!("bare-{i}"));
        git(
            repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                &format!("bare-{i}"),
                path.to_str().unwrap(),
                "main",
            ],
        );
        let ok = Command::new(AGENT).arg("--version").output().unwrap();
        assert!(ok.status.success());
    }
    start.elapsed()
}

/// One round: returns spectask's and the baseline's cost per session start.
async fn run() -> (Duration, Duration) {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join(".spectask/implementation.md"), "{{details}}\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);

    let mut config = ServeConfig::new("127.0.0.1:0", dir.path().join("data"));
    config.database_url = Some(db.url().to_string());
    config
        .agent_profiles
        .insert("test".into(), AgentProfile::new(AGENT, &[]));
    config.default_agent = "test".into();
    let app = spectask::app::build(&config).await.unwrap();
    let store = app.store();
    let implementer = app.implementer();
    let settings = ProjectSettings {
        base_branch: "main".into(),
        spec_folder: "specs".into(),
        verification_command: None,
        planning_wip_limit: None,
        implementation_wip_limit: None,
        max_parallel_sessions: TASKS as i64,
        permission_policy: Default::default(),
        ..Default::default()
    };
    let project = store
        .create_project(
            NewProject {
                name: "bench".into(),
                path: repo.display().to_string(),
                settings,
            },
            "bench",
        )
        .await
        .unwrap();
    let mut plan = String::from("# Implementation Plan\n\n");
    for i in 1..=TASKS {
        let p = if i > 1 { " (P)" } else { "" };
        plan.push_str(&format!("- [ ] {i}. Edit {i}{p}\n  - write f{i}.txt {i}\n"));
    }
    let files = [
        ("requirements.md".to_string(), "# Requirements\n\n### Requirement 1: X\n\n#### Acceptance Criteria\n\n1. The system SHALL x\n".to_string()),
        ("design.md".to_string(), "# Design\n".to_string()),
        ("tasks.md".to_string(), plan),
    ];
    let task = store
        .create_spec_task(
            NewSpecTask {
                project_id: project.id,
                title: "fifty".into(),
                description: String::new(),
                prompt: "fifty edits".into(),
                priority: Priority::Medium,
                task_type: TaskType::Feature,
                max_parallel_sessions: Some(TASKS as i64),
                agent_profile: None,
            },
            "bench",
        )
        .await
        .unwrap();
    let request = spectask::orchestrator::import::ImportRequest {
        project_id: project.id,
        title: "fifty".into(),
        source: "bench".into(),
        files: files.into_iter().collect(),
    };
    let reviewer =
        spectask::orchestrator::review::Reviewer::new(store.clone(), dir.path().join("data/tasks"));
    let imported = reviewer.import(request).await.unwrap();
    let _ = task;
    // Warm the agent process up, as a running server would have it.
    let rt = app.agents().runtime(imported.id).await.unwrap();
    rt.start().await.unwrap();
    reviewer.approve(imported.id, "bench").await.unwrap();

    let mut events = store.subscribe_events();
    let start = Instant::now();
    let driver = {
        let implementer = implementer.clone();
        let mut events = store.subscribe_events();
        tokio::spawn(async move {
            loop {
                implementer.run_once().await.unwrap();
                if events.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    // All sessions started: every thread has had its prompt sent.
    let started = loop {
        let prompted = store
            .list_events(0, Some(imported.id), 100_000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == "agent_thread.status_changed" && e.data["to"] == "prompting")
            .count();
        if prompted >= TASKS {
            break start.elapsed();
        }
        events.changed().await.unwrap();
    };
    // Let the run finish so nothing is torn down mid-merge.
    loop {
        if store.get_spec_task(imported.id).await.unwrap().status
            == SpecTaskStatus::ImplementationReview
        {
            break;
        }
        events.changed().await.unwrap();
    }
    let total = start.elapsed();
    driver.abort();
    rt.stop().await.unwrap();
    let bare = baseline(&repo, dir.path());
    let ours_per = started / TASKS as u32;
    let bare_per = bare / TASKS as u32;
    println!(
        "{TASKS} independent tasks, max parallel {TASKS}: approval to all sessions started {:.1} ms \
         (whole run merged in {:.1} ms) | per session start: spectask {:.2} ms, bare `git worktree add` + \
         process spawn {:.2} ms | ratio {:.2}",
        started.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        ours_per.as_secs_f64() * 1e3,
        bare_per.as_secs_f64() * 1e3,
        ours_per.as_secs_f64() / bare_per.as_secs_f64()
    );
    (ours_per, bare_per)
}

/// Rounds run; the figure reported is the median round's ratio, since one round on
/// a busy two-core machine can be off either way.
const ROUNDS: usize = 5;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut ratios = Vec::new();
            for _ in 0..ROUNDS {
                let (ours, bare) = run().await;
                ratios.push(ours.as_secs_f64() / bare.as_secs_f64());
            }
            ratios.sort_by(f64::total_cmp);
            println!(
                "median ratio over {ROUNDS} rounds: {:.2} (goal: 1.5 or less)",
                ratios[ROUNDS / 2]
            );
        });
}
