//! Every path through a session ends: each outcome an agent, a verification command
//! or a person can give a session, run with the scripted agent and real git, reaches
//! an end state or one that lists what a person must do (`needs_person`, `idle`).

mod common;

use common::app::{TestApp, git};
use common::plan::{
    approved_plan, commit_templates, drive, scripted_app, set_project, wait_for, wait_status,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Git as the agent runs it in its terminal, with an identity of its own.
const AGENT_GIT: &str = "run git -c user.name=agent -c user.email=agent@example.com";

struct Run {
    app: TestApp,
    repo: std::path::PathBuf,
    id: i64,
    driver: tokio::task::JoinHandle<()>,
}

impl Run {
    /// A project with `settings`, whose implementation prompt is the task's details
    /// (the scripted agent's commands), running `plan`.
    async fn start(settings: Value, plan: &str) -> Run {
        let app = scripted_app(|_| {}).await;
        let (project, repo) = app.project_with_repo().await;
        std::fs::write(repo.join("old.txt"), "old\n").unwrap();
        git(&repo, &["add", "old.txt"]);
        git(&repo, &["commit", "-qm", "a file to delete"]);
        commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
        set_project(&app, project, settings).await;
        let id = approved_plan(&app, project, "Outcomes", plan).await;
        let driver = drive(&app);
        Run {
            app,
            repo,
            id,
            driver,
        }
    }

    async fn task(&self) -> Value {
        self.app
            .get(&format!("/api/v1/spec-tasks/{}", self.id))
            .await
            .1
    }

    fn branch_log(&self, branch: &str) -> String {
        git(&self.repo, &["log", "--format=%s", branch])
    }

    async fn sessions(&self) -> Vec<Value> {
        let (_, list) = self
            .app
            .get(&format!("/api/v1/spec-tasks/{}/sessions", self.id))
            .await;
        list.as_array().unwrap().clone()
    }

    /// The session working on plan task `key` (the newest one).
    async fn session_of(&self, key: &str) -> Value {
        let prefix = format!("{key}. ");
        self.sessions()
            .await
            .into_iter()
            .rev()
            .find(|s| s["name"].as_str().unwrap().starts_with(&prefix))
            .unwrap_or_else(|| panic!("no session for task {key}"))
    }

    /// Waits until the run waits for a person (idle, something listed) and returns
    /// the overview.
    async fn waiting_for_person(&self, kind: &str) -> Value {
        wait_for(
            &self.app,
            &format!("the run to wait for a person ({kind})"),
            || async {
                let (_, o) = self
                    .app
                    .get(&format!("/api/v1/spec-tasks/{}/overview", self.id))
                    .await;
                let listed = o["needs_person"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["kind"] == kind);
                (o["idle"] == true && listed).then_some(o)
            },
        )
        .await
    }

    async fn plan_status(&self) -> Vec<(String, String)> {
        let (_, plan) = self
            .app
            .get(&format!(
                "/api/v1/spec-tasks/{}/implementation-tasks",
                self.id
            ))
            .await;
        plan.as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap().to_string(),
                    t["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    async fn finish(self) {
        self.driver.abort();
        self.app.shutdown().await;
    }
}

fn statuses(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_changes_nothing_completes_with_nothing_merged_and_its_dependent_runs() {
    let plan = "- [ ] 1. Nothing to do\n  - say it is already done\n- [ ] 2. After\n  - write after.txt after\n";
    let run = Run::start(json!({}), plan).await;
    let task = wait_status(&run.app, run.id, "implementation_review").await;
    let branch = task["branch"].as_str().unwrap();
    let spec = format!("specs/{}", task["spec_dir_name"].as_str().unwrap());
    let log = run.branch_log(branch);
    assert!(!log.contains("merge task 1 "), "{log}");
    assert!(log.contains("merge task 2 "), "{log}");
    let empty = run.session_of("1").await;
    assert_eq!(empty["status"], "completed");
    assert!(
        log.contains(&format!(
            "task 1 done (session {} changed nothing)",
            empty["id"]
        )),
        "{log}"
    );
    let tasks_md = git(&run.repo, &["show", &format!("{branch}:{spec}/tasks.md")]);
    assert!(tasks_md.contains("- [x] 1. Nothing to do"), "{tasks_md}");
    let history = git(
        &run.repo,
        &[
            "show",
            &format!("{branch}:{spec}/history/session-{}-1.md", empty["id"]),
        ],
    );
    assert!(history.contains("merged as: nothing"), "{history}");
    // The report records the tick commit (one parent) as the empty session's merge.
    let (_, report) = run
        .app
        .get(&format!("/api/v1/spec-tasks/{}/report", run.id))
        .await;
    let marker = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == empty["id"])
        .and_then(|s| s["merge_commit"].as_str())
        .map(str::to_string);
    let marker = marker.expect("the empty session records a merge marker");
    let parents = git(&run.repo, &["rev-list", "--parents", "-n1", &marker]);
    assert_eq!(parents.split_whitespace().count(), 2, "{parents}");
    // The run is over: its agent process is gone.
    let (_, agent) = run
        .app
        .get(&format!("/api/v1/spec-tasks/{}/agent", run.id))
        .await;
    assert_eq!(agent["status"], "stopped", "{agent}");
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_empty_session_review_a_person_decides_and_skip_lets_the_run_go_on() {
    let plan =
        "- [ ] 1. Nothing to do\n  - say nothing\n- [ ] 2. After\n  - write after.txt after\n";
    let run = Run::start(json!({ "empty_session": "review" }), plan).await;
    let overview = run.waiting_for_person("session_failed").await;
    let empty = run.session_of("1").await;
    assert_eq!(empty["status"], "failed");
    assert!(
        empty["failure_reason"]
            .as_str()
            .unwrap()
            .contains("made no change"),
        "{empty}"
    );
    assert_eq!(
        run.plan_status().await,
        statuses(&[("1", "failed"), ("2", "blocked")]),
        "{overview}"
    );
    let (status, body) = run
        .app
        .post(&format!("/api/v1/sessions/{}/skip", empty["id"]), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let task = wait_status(&run.app, run.id, "implementation_review").await;
    let log = run.branch_log(task["branch"].as_str().unwrap());
    assert!(
        log.contains("merge task 2 ") && !log.contains("merge task 1 "),
        "{log}"
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untracked_files_deletions_tasks_md_alone_and_the_agents_own_commits_all_merge() {
    let plan = format!(
        "- [ ] 1. Untracked\n  - write untracked.txt new\n\
         - [ ] 2. Delete (P)\n  - run rm old.txt\n\
         - [ ] 3. Tick only (P)\n  - [ ] 3.1 Tick me\n  - run perl -pi -e s/\\[\\x20\\]\\x203\\.1/[x]\\x203.1/ {{{{spec_dir}}}}/tasks.md\n\
         - [ ] 4. Own commit (P)\n  - write committed.txt c\n  - {AGENT_GIT} add -A\n  - {AGENT_GIT} commit -qm agent-made-this\n  - write leftover.txt l\n\
         - [ ] 5. Own commit, nothing left (P)\n  - write clean.txt c\n  - {AGENT_GIT} add -A\n  - {AGENT_GIT} commit -qm agent-clean-commit\n"
    );
    let run = Run::start(json!({ "max_parallel_sessions": 1 }), &plan).await;
    let task = wait_status(&run.app, run.id, "implementation_review").await;
    let branch = task["branch"].as_str().unwrap();
    let spec = format!("specs/{}", task["spec_dir_name"].as_str().unwrap());
    let log = run.branch_log(branch);
    for key in ["1", "2", "3", "4", "5"] {
        assert_eq!(
            log.matches(&format!("merge task {key} ")).count(),
            1,
            "task {key} merged once:\n{log}"
        );
    }
    assert!(
        log.contains("agent-made-this") && log.contains("agent-clean-commit"),
        "{log}"
    );
    let files = git(&run.repo, &["ls-tree", "--name-only", branch]);
    for f in [
        "untracked.txt",
        "committed.txt",
        "leftover.txt",
        "clean.txt",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} in {files}");
    }
    assert!(!files.lines().any(|l| l == "old.txt"), "deleted: {files}");
    let tasks_md = git(&run.repo, &["show", &format!("{branch}:{spec}/tasks.md")]);
    assert!(
        tasks_md.contains("- [x] 3.1 Tick me") && tasks_md.matches("- [x] ").count() == 6,
        "{tasks_md}"
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_reset_by_the_agent_ends_as_a_session_with_nothing_to_merge() {
    let plan = format!(
        "- [ ] 1. Undo own work\n  - write undone.txt u\n  - {AGENT_GIT} add -A\n  - {AGENT_GIT} commit -qm undone\n  - run git reset --hard HEAD~1\n\
         - [ ] 2. Reset behind the cut\n  - run git reset --hard HEAD~2\n\
         - [ ] 3. After\n  - write after.txt a\n"
    );
    let run = Run::start(json!({}), &plan).await;
    let task = wait_status(&run.app, run.id, "implementation_review").await;
    let log = run.branch_log(task["branch"].as_str().unwrap());
    assert!(!log.contains("undone"), "{log}");
    assert!(
        !log.contains("merge task 1 ") && !log.contains("merge task 2 "),
        "{log}"
    );
    assert!(log.contains("merge task 3 "), "{log}");
    assert_eq!(log.matches("changed nothing)").count(), 2, "{log}");
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_answers_times_out_and_fails_for_a_person() {
    let plan = "- [ ] 1. Hang\n  - hang\n- [ ] 2. After\n  - write after.txt a\n";
    let run = Run::start(json!({ "turn_timeout_secs": 1, "max_attempts": 2 }), plan).await;
    run.waiting_for_person("session_failed").await;
    let hung = run.session_of("1").await;
    assert_eq!(hung["status"], "failed");
    assert_eq!(hung["attempt"], 2, "a timed-out turn is an attempt: {hung}");
    assert!(
        hung["failure_reason"]
            .as_str()
            .unwrap()
            .contains("did not answer session/prompt"),
        "{hung}"
    );
    // `task show` lists it for the person.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_spectask"))
        .args(["--url", &run.app.url, "--token", &run.app.token])
        .args(["task", "show", &run.id.to_string()])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("needs you:") && shown.contains("retry, skip or cancel"),
        "{shown}"
    );
    // Cancelling the hung task cancels what waits on it; the run ends for review.
    let (status, body) = run
        .app
        .post(
            &format!("/api/v1/sessions/{}/cancel", hung["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_status(&run.app, run.id, "implementation_review").await;
    assert_eq!(
        run.plan_status().await,
        statuses(&[("1", "cancelled"), ("2", "cancelled")])
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_that_fails_hangs_or_prints_megabytes_fails_the_session_with_a_bounded_reason()
{
    for (command, expect) in [
        ("false", "verification failed twice"),
        ("sleep 600", "did not finish within 1 s"),
        (
            "head -c 3000000 /dev/zero | tr '\\0' x; exit 1",
            "earlier bytes left out",
        ),
    ] {
        let plan = "- [ ] 1. Checked\n  - write checked.txt c\n";
        let run = Run::start(
            json!({ "verification_command": command, "verify_timeout_secs": 1 }),
            plan,
        )
        .await;
        run.waiting_for_person("session_failed").await;
        let s = run.session_of("1").await;
        let reason = s["failure_reason"].as_str().unwrap();
        assert!(
            reason.contains(expect),
            "{command}: {}",
            &reason[..reason.len().min(300)]
        );
        assert!(reason.len() < 100_000, "{command}: {} bytes", reason.len());
        let log = run.branch_log(run.task().await["branch"].as_str().unwrap());
        assert!(!log.contains("merge task 1 "), "{log}");
        // Skipped, the task counts as done and the run ends.
        let (status, body) = run
            .app
            .post(&format!("/api/v1/sessions/{}/skip", s["id"]), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        wait_status(&run.app, run.id, "implementation_review").await;
        run.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_session_while_it_verifies_or_is_blocked_ends_the_run() {
    // While its verification command runs.
    let plan = "- [ ] 1. Slow check\n  - write slow.txt s\n- [ ] 2. After\n  - write after.txt a\n";
    let run = Run::start(
        json!({ "verification_command": "sleep 3", "verify_timeout_secs": 60 }),
        plan,
    )
    .await;
    wait_for(&run.app, "the session's turn to end", || async {
        let s = run.sessions().await.into_iter().next()?;
        let (_, t) = run
            .app
            .get(&format!("/api/v1/sessions/{}/transcript", s["id"]))
            .await;
        t.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "stop_reason")
            .then_some(())
    })
    .await;
    let s = run.session_of("1").await;
    let (status, body) = run
        .app
        .post(&format!("/api/v1/sessions/{}/cancel", s["id"]), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let task = wait_status(&run.app, run.id, "implementation_review").await;
    let log = run.branch_log(task["branch"].as_str().unwrap());
    assert!(!log.contains("merge task"), "{log}");
    assert_eq!(run.session_of("1").await["status"], "cancelled");
    run.finish().await;

    // While a blocking message holds it.
    let plan = "- [ ] 1. Held\n  - write held.txt h\n";
    let run = Run::start(json!({}), plan).await;
    let s = wait_for(&run.app, "the session to start", || async {
        let s = run.sessions().await.into_iter().next()?;
        Some(s)
    })
    .await;
    let (status, body) = run
        .app
        .post(
            &format!("/api/v1/spec-tasks/{}/coordination", run.id),
            json!({ "kind": "blocking", "to_session_id": s["id"], "message": "wait for me" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    run.waiting_for_person("blocked").await;
    let (status, body) = run
        .app
        .post(&format!("/api/v1/sessions/{}/cancel", s["id"]), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_status(&run.app, run.id, "implementation_review").await;
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_keeps_failing_the_same_way_fails_the_task_and_retry_resumes_it() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let plan = "- [ ] 1. Only\n  - write only.txt o\n";
    let id = approved_plan(&app, project, "Stuck", plan).await;
    // The approved plan vanishes from spectask's worktree: every step fails the same
    // way reading it. The one-step function stands in for the loop's ticks.
    let task = app.get(&format!("/api/v1/spec-tasks/{id}")).await.1;
    let tasks_md = app
        .data_dir
        .join("tasks")
        .join(id.to_string())
        .join("worktree")
        .join(format!(
            "specs/{}/tasks.md",
            task["spec_dir_name"].as_str().unwrap()
        ));
    let original = std::fs::read_to_string(&tasks_md)
        .unwrap_or_else(|e| panic!("{}: {e}", tasks_md.display()));
    std::fs::remove_file(&tasks_md).unwrap();
    for _ in 0..spectask::orchestrator::repeats::STUCK_AFTER {
        app.implementer.run_once().await.unwrap();
    }
    let failed = app.get(&format!("/api/v1/spec-tasks/{id}")).await.1;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failed_phase"], "implementation");
    let reason = failed["failure_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("stuck:") && reason.contains("tasks.md"),
        "{reason}"
    );
    let (_, overview) = app.get(&format!("/api/v1/spec-tasks/{id}/overview")).await;
    assert_eq!(
        overview["needs_person"][0]["kind"], "task_failed",
        "{overview}"
    );
    // Once the cause is gone, retry resumes the run to its end.
    std::fs::write(&tasks_md, original).unwrap();
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let driver = drive(&app);
    wait_status(&app, id, "implementation_review").await;
    driver.abort();
    app.shutdown().await;
}
