//! The approved plan runs as parallel work sessions: a six-task diamond with `(P)`
//! markers and max parallel 3, with the scripted agent doing each task's edit.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::app::{TestApp, git, spawn_app_with};
use common::db::Backend;
use common::plan::{
    AGENT, WAIT, approved_plan, commit_templates, drive, scripted_app, set_project, wait_status,
};
use reqwest::StatusCode;
use serde_json::json;
use spectask::agents::profile::AgentProfile;
use spectask::domain::ids::*;

/// Each task's details are the scripted agent's commands.
const PLAN: &str = "# Implementation Plan

- [ ] 1. Base
  - write base.txt base
- [ ] 2. Left
  - write left.txt left
  - sleep 300
  - _Depends: 1_
- [ ] 3. Right (P)
  - write right.txt right
  - sleep 300
- [ ] 4. Middle (P)
  - write middle.txt middle
  - sleep 300
- [ ] 5. Join
  - write join.txt join
  - _Depends: 2, 3, 4_
- [ ] 6. Docs
  - write docs.txt docs
  - _Depends: 1_
";

/// Waits (with a timeout) until some session's agent says `needle`.
async fn wait_message(
    live: &mut tokio::sync::broadcast::Receiver<spectask::agents::host::LiveUpdate>,
    needle: &str,
) {
    tokio::time::timeout(WAIT, async {
        loop {
            let u = live.recv().await.unwrap();
            if matches!(&u.update, spectask::agents::protocol::AgentUpdate::Message(t) if t.contains(needle)) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no agent said {needle:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diamond_plan_runs_in_parallel_and_merges_every_task_once() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    // The project's implementation prompt is the task's details, so the scripted
    // agent carries them out; the handoffs follow (lines the agent ignores).
    commit_templates(
        &repo,
        &[(
            "implementation.md",
            "{{details}}\nsay finished {{key}}\nHandoffs:\n{{handoffs}}\n",
        )],
    );
    set_project(&app, project, json!({ "max_parallel_sessions": 3 })).await;
    let id = app.task(project, "Diamond").await;
    app.post(
        &format!("/api/v1/spec-tasks/{id}/start-planning"),
        json!({}),
    )
    .await;
    common::spec::record_spec(&app, id, common::spec::DESIGN, PLAN).await;
    // Approval starts the implementation loop (the app was started without loops,
    // so this test drives them: the planner is not needed, the implementer is).
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("implementing")),
        "{body}"
    );
    let driver = drive(&app);
    let done = wait_status(&app, id, "implementation_review").await;
    driver.abort();
    let branch = done["branch"].as_str().unwrap().to_string();

    // Ordering and parallelism, read from the recorded status changes.
    let (_, page) = app
        .get(&format!("/api/v1/events?spec_task={id}&limit=1000"))
        .await;
    let mut started: HashMap<String, i64> = HashMap::new();
    let mut finished: HashMap<String, i64> = HashMap::new();
    let (mut running, mut most) = (0i64, 0i64);
    for e in page["items"].as_array().unwrap() {
        if e["kind"] != "implementation_task.status_changed" {
            continue;
        }
        let key = e["data"]["key"].as_str().unwrap().to_string();
        match e["data"]["to"].as_str().unwrap() {
            "in_progress" => {
                started.insert(key, e["id"].as_i64().unwrap());
                running += 1;
                most = most.max(running);
            }
            "done" => {
                finished.insert(key, e["id"].as_i64().unwrap());
                running -= 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    for (task, deps) in [
        ("2", vec!["1"]),
        ("3", vec!["1"]),
        ("4", vec!["1"]),
        ("6", vec!["1"]),
        ("5", vec!["2", "3", "4"]),
    ] {
        for d in deps {
            assert!(
                started[task] > finished[d],
                "task {task} started before {d} was merged"
            );
        }
    }
    assert!(most <= 3, "at most 3 sessions at once, saw {most}");
    assert!(most >= 2, "at least 2 sessions ran at once, saw {most}");

    // The task branch holds every task's work exactly once, tasks.md all ticked,
    // and one history file per session.
    for file in ["base", "left", "right", "middle", "join", "docs"] {
        assert_eq!(git(&repo, &["show", &format!("{branch}:{file}.txt")]), file);
    }
    let log = git(&repo, &["log", "--format=%s", &branch]);
    for key in 1..=6 {
        let merges = log
            .lines()
            .filter(|l| l.contains(&format!("merge task {key} (session")))
            .count();
        assert_eq!(merges, 1, "task {key} merged once:\n{log}");
    }
    let spec = format!("specs/{}", done["spec_dir_name"].as_str().unwrap());
    let tasks_md = git(&repo, &["show", &format!("{branch}:{spec}/tasks.md")]);
    assert_eq!(tasks_md.matches("- [x] ").count(), 6, "{tasks_md}");
    assert!(!tasks_md.contains("- [ ] "), "{tasks_md}");
    let history = git(
        &repo,
        &[
            "ls-tree",
            "--name-only",
            &format!("{branch}:{spec}/history"),
        ],
    );
    assert_eq!(
        history
            .lines()
            .filter(|l| l.starts_with("session-"))
            .count(),
        6,
        "{history}"
    );
    // The final report is committed beside the histories.
    let report = git(
        &repo,
        &["show", &format!("{branch}:{spec}/history/report.md")],
    );
    assert!(
        report.contains("- tasks: 6 done, 0 skipped, 6 in all"),
        "{report}"
    );
    assert_eq!(report.matches("| completed |").count(), 6, "{report}");
    let (_, api_report) = app.get(&format!("/api/v1/spec-tasks/{id}/report")).await;
    assert_eq!(api_report["sessions"].as_array().unwrap().len(), 6);
    assert_eq!(api_report["tasks_done"], 6);
    // The join task was handed the summaries of exactly the tasks it depends on.
    let plan_tasks = app
        .store
        .list_implementation_tasks(SpecTaskId(id))
        .await
        .unwrap();
    let join = plan_tasks.iter().find(|t| t.key == "5").unwrap();
    let join_session = app
        .store
        .list_work_sessions(SpecTaskId(id))
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.implementation_task_id == Some(join.id))
        .unwrap();
    let first_prompt = app
        .store
        .list_transcript(join_session.id, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == spectask::domain::TranscriptKind::Prompt)
        .unwrap()
        .content;
    for dependency in [
        "task 2 (Left) is merged",
        "task 3 (Right) is merged",
        "task 4 (Middle) is merged",
    ] {
        assert!(
            first_prompt.contains(dependency),
            "{dependency}: {first_prompt}"
        );
    }
    assert!(
        first_prompt.contains("finished 2"),
        "the agent's last message: {first_prompt}"
    );
    assert!(!first_prompt.contains("task 6 (Docs)"), "{first_prompt}");
    // Merged worktrees are gone; the user's checkout never moved.
    assert_eq!(
        git(&repo, &["symbolic-ref", "--short", "HEAD"]).trim(),
        "main"
    );
    let sessions = app.store.list_work_sessions(SpecTaskId(id)).await.unwrap();
    assert_eq!(sessions.len(), 6);
    for s in &sessions {
        assert_eq!(
            s.status,
            spectask::domain::WorkSessionStatus::Completed,
            "{}",
            s.name
        );
        assert!(!std::path::Path::new(s.worktree_path.as_ref().unwrap()).exists());
    }
    app.shutdown().await;
}

/// Waits, on the event log, until the plan's statuses are `expected` (key → status).
async fn wait_plan(app: &TestApp, task: i64, expected: &[(&str, &str)]) {
    let found = wait_plan_inner(app, task, expected).await;
    assert!(
        found,
        "the plan never reached {expected:?}:\n{}",
        state_of(app, task).await
    );
}

async fn wait_plan_inner(app: &TestApp, task: i64, expected: &[(&str, &str)]) -> bool {
    let mut events = app.store.subscribe_events();
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, plan) = app
                .get(&format!("/api/v1/spec-tasks/{task}/implementation-tasks"))
                .await;
            let status = |key: &str| {
                plan.as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["key"] == key)
                    .map(|t| t["status"].as_str().unwrap().to_string())
            };
            if expected
                .iter()
                .all(|(k, s)| status(k).as_deref() == Some(*s))
            {
                return;
            }
            events.changed().await.unwrap();
        }
    })
    .await
    .is_ok()
}

/// What a stuck run looks like, for the failure message.
async fn state_of(app: &TestApp, task: i64) -> String {
    let (_, plan) = app
        .get(&format!("/api/v1/spec-tasks/{task}/implementation-tasks"))
        .await;
    let (_, sessions) = app
        .get(&format!("/api/v1/spec-tasks/{task}/sessions"))
        .await;
    format!("plan: {plan}\nsessions: {sessions}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_fails_twice_blocks_its_dependents_and_skip_unblocks_them() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config
            .agent_profiles
            .insert("test".into(), AgentProfile::new(AGENT, &[]));
        config.default_agent = "test".into();
        config.agent_restart.backoff = Duration::from_millis(20);
    })
    .await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(
        &repo,
        &[(
            "implementation.md",
            "{{details}}
",
        )],
    );
    // One agent process serves every session of a task, so a crash interrupts the
    // sessions running beside it too; the fragile task runs alone to keep the test
    // about its own failures.
    let plan = "- [ ] 1. Independent\n  - write ind.txt ind\n- [ ] 2. Fragile\n  - crash\n\
                - [ ] 3. After fragile\n  - write after.txt after\n";
    let id = approved_plan(&app, project, "Fragile", plan).await;
    let driver = drive(&app);
    wait_plan(
        &app,
        id,
        &[("1", "done"), ("2", "failed"), ("3", "blocked")],
    )
    .await;
    let sessions = app.store.list_work_sessions(SpecTaskId(id)).await.unwrap();
    let fragile = sessions.iter().find(|s| s.name.starts_with("2.")).unwrap();
    assert_eq!(fragile.status, spectask::domain::WorkSessionStatus::Failed);
    assert_eq!(fragile.attempt, 2, "retried once in the same worktree");
    assert_eq!(
        app.get(&format!("/api/v1/spec-tasks/{id}")).await.1["status"],
        "implementing"
    );
    let (_, progress) = app.get(&format!("/api/v1/spec-tasks/{id}/progress")).await;
    assert_eq!(
        (
            progress["tasks_total"].as_i64(),
            progress["tasks_done"].as_i64()
        ),
        (Some(3), Some(1))
    );

    // Refused choices change nothing; `skip` unblocks what waited on the failure.
    let (status, _) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/implementation-tasks/3/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/implementation-tasks/9/skip"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/implementation-tasks/2/skip"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("skipped")),
        "{body}"
    );
    let done = wait_status(&app, id, "implementation_review").await;
    driver.abort();
    let branch = done["branch"].as_str().unwrap();
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:after.txt")]),
        "after"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_conflict_is_resolved_by_a_conflict_fixing_session_keeping_both_changes() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    // The scripted fixer resolves by keeping both lines.
    commit_templates(
        &repo,
        &[
            ("implementation.md", "{{details}}\n"),
            ("conflict.md", "write shared.txt left\\nright\\n\n"),
        ],
    );
    // Two parallel tasks write the same file differently; the second to merge conflicts.
    let plan = "- [ ] 1. Left\n  - write shared.txt left\\n\n- [ ] 2. Right (P)\n  - sleep 200\n  - write shared.txt right\\n\n";
    let id = approved_plan(&app, project, "Conflicting", plan).await;
    let driver = drive(&app);
    let done = wait_status(&app, id, "implementation_review").await;
    driver.abort();
    let branch = done["branch"].as_str().unwrap();
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:shared.txt")]),
        "left\nright\n",
        "both changes"
    );
    let (_, coordination) = app
        .get(&format!("/api/v1/spec-tasks/{id}/coordination"))
        .await;
    let conflict = coordination
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "conflict")
        .expect("a conflict event");
    assert!(conflict["message"].as_str().unwrap().contains("shared.txt"));
    let sessions = app.store.list_work_sessions(SpecTaskId(id)).await.unwrap();
    let fixer = sessions
        .iter()
        .find(|s| s.kind == spectask::domain::WorkSessionKind::MergeConflict)
        .expect("a conflict-fixing session");
    assert_eq!(fixer.status, spectask::domain::WorkSessionStatus::Completed);
    assert_eq!(
        fixer.parent_id,
        conflict["from_session_id"].as_i64().map(WorkSessionId)
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.status == spectask::domain::WorkSessionStatus::Completed)
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_session_is_retried_to_success_in_the_same_worktree() {
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("turns.txt");
    let state = scripts.path().join("state");
    // Turn 1 starts the work and crashes; turn 2 (the continuation) finishes it.
    std::fs::write(
        &script,
        "write work.txt started\ncrash\n---\nread work.txt\nwrite work.txt finished\n",
    )
    .unwrap();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        let args = [
            "--script",
            script.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        config
            .agent_profiles
            // Its state folder is its own, as a real agent's is: declared writable.
            .insert(
                "test".into(),
                AgentProfile::new(AGENT, &args).writing(&[state.to_str().unwrap()]),
            );
        config.default_agent = "test".into();
        config.agent_restart.backoff = Duration::from_millis(20);
    })
    .await;
    let (project, repo) = app.project_with_repo().await;
    let id = approved_plan(&app, project, "Crashy", "- [ ] 1. The only task\n").await;
    let driver = drive(&app);
    let done = wait_status(&app, id, "implementation_review").await;
    driver.abort();
    let branch = done["branch"].as_str().unwrap();
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:work.txt")]),
        "finished"
    );
    let session = app
        .store
        .list_work_sessions(SpecTaskId(id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(session.attempt, 2);
    let transcript = app.store.list_transcript(session.id, 0).await.unwrap();
    let text: String = transcript
        .iter()
        .map(|e| format!("{} {}\n", e.kind, e.content))
        .collect();
    assert!(
        text.contains("read work.txt: started"),
        "the retry found the first attempt's work:\n{text}"
    );
    assert!(text.contains("crashing as asked"), "{text}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_session_with_a_parent_and_a_dependency_runs_like_any_task() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(
        &repo,
        &[(
            "implementation.md",
            "{{details}}
",
        )],
    );
    let id = app.task(project, "Spawning").await;
    let spawn = format!("/api/v1/spec-tasks/{id}/sessions");
    let (status, _) = app
        .post(&spawn, json!({ "name": "early", "prompt": "say hi" }))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only into a task that is implementing"
    );
    app.post(
        &format!("/api/v1/spec-tasks/{id}/start-planning"),
        json!({}),
    )
    .await;
    common::spec::record_spec(
        &app,
        id,
        common::spec::DESIGN,
        "- [ ] 1. First\n  - write a.txt a\n  - sleep 300\n",
    )
    .await;
    app.post(&format!("/api/v1/spec-tasks/{id}/approve"), json!({}))
        .await;
    let implementer = app.implementer.clone();
    implementer.run_once().await.unwrap();
    let first = app
        .store
        .list_work_sessions(SpecTaskId(id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    // What names nothing is 404; what breaks a rule of the schema is 422.
    for (bad, expected) in [
        (
            json!({ "name": "x", "prompt": "say x", "depends_on": ["9"] }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "name": "x", "prompt": "say x", "parent_id": 999 }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "name": " ", "prompt": "say x" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, body) = app.post(&spawn, bad).await;
        assert_eq!(status, expected, "{body}");
    }
    let (status, spawned) = app
        .post(
            &spawn,
            json!({ "name": "helper", "prompt": "write helper.txt helped", "parent_id": first.id,
                    "depends_on": [format!("session:{}", first.id)] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{spawned}");
    assert_eq!(spawned["kind"], "spawned");
    assert_eq!(spawned["parent_id"], first.id.0);
    let driver = drive(&app);
    let done = wait_status(&app, id, "implementation_review").await;
    driver.abort();
    let branch = done["branch"].as_str().unwrap();
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:helper.txt")]),
        "helped"
    );
    let (_, page) = app
        .get(&format!("/api/v1/events?spec_task={id}&limit=1000"))
        .await;
    let at = |key: &str, to: &str| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["kind"] == "implementation_task.status_changed"
                    && e["data"]["key"] == key
                    && e["data"]["to"] == to
            })
            .map(|e| e["id"].as_i64().unwrap())
            .unwrap()
    };
    assert!(
        at("S1", "in_progress") > at("1", "done"),
        "the spawned session waited for its dependency"
    );
    let sessions = app.store.list_work_sessions(SpecTaskId(id)).await.unwrap();
    let helper = sessions
        .iter()
        .find(|s| s.id == WorkSessionId(spawned["id"].as_i64().unwrap()))
        .unwrap();
    assert_eq!(
        helper.status,
        spectask::domain::WorkSessionStatus::Completed
    );
    assert_eq!(
        sessions.len(),
        2,
        "the spawned session was used, not a new one"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_spec_task_cancels_its_threads_stops_the_agent_and_keeps_branches() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(
        &repo,
        &[(
            "implementation.md",
            "{{details}}
",
        )],
    );
    let id = approved_plan(
        &app,
        project,
        "Cancelled",
        "- [ ] 1. Forever\n  - write a.txt a\n  - hang\n- [ ] 2. Never\n  - write b.txt b\n",
    )
    .await;
    let mut live = app.agents.subscribe();
    app.implementer.run_once().await.unwrap();
    // Wait until the first session's agent is working (its write is reported).
    wait_message(&mut live, "wrote a.txt").await;
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{body}"
    );
    let (_, instance) = app.get(&format!("/api/v1/spec-tasks/{id}/agent")).await;
    assert_eq!(instance["status"], "stopped");
    let sessions = app.store.list_work_sessions(SpecTaskId(id)).await.unwrap();
    assert!(
        sessions
            .iter()
            .all(|s| s.status == spectask::domain::WorkSessionStatus::Cancelled)
    );
    let (_, plan) = app
        .get(&format!("/api/v1/spec-tasks/{id}/implementation-tasks"))
        .await;
    assert!(
        plan.as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "cancelled"),
        "{plan}"
    );
    // Branches stay; nothing was merged.
    let branch = body["branch"].as_str().unwrap();
    git(&repo, &["rev-parse", "--verify", branch]);
    git(
        &repo,
        &[
            "rev-parse",
            "--verify",
            sessions[0].branch.as_ref().unwrap(),
        ],
    );
    assert!(!git(&repo, &["log", "--format=%s", branch]).contains("merge task"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_event_holds_a_session_until_unblocked_and_messages_reach_prompts() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let id = approved_plan(
        &app,
        project,
        "Held",
        "- [ ] 1. Held\n  - write a.txt a\n  - sleep 1000\n",
    )
    .await;
    let coordination = format!("/api/v1/spec-tasks/{id}/coordination");
    let (status, _) = app
        .post(
            &coordination,
            json!({ "kind": "broadcast", "message": "use tabs, not spaces" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut live = app.agents.subscribe();
    let driver = drive(&app);
    wait_message(&mut live, "wrote a.txt").await;
    let session = app
        .store
        .list_work_sessions(SpecTaskId(id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let (status, body) = app
        .post(&coordination, json!({ "kind": "blocking", "to_session_id": session.id, "message": "wait for the schema" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Held: blocked, and nothing merged while it is.
    let mut events = app.store.subscribe_events();
    tokio::time::timeout(WAIT, async {
        while app.store.get_work_session(session.id).await.unwrap().status
            != spectask::domain::WorkSessionStatus::Blocked
        {
            events.changed().await.unwrap();
        }
    })
    .await
    .expect("the session is held");
    let branch = app
        .store
        .get_spec_task(SpecTaskId(id))
        .await
        .unwrap()
        .branch;
    assert!(!git(&repo, &["log", "--format=%s", &branch]).contains("merge task 1"));
    assert_eq!(
        app.get(&format!("/api/v1/spec-tasks/{id}")).await.1["status"],
        "implementing"
    );
    let (status, _) = app
        .post(
            &coordination,
            json!({ "kind": "unblocked", "to_session_id": session.id, "message": "schema is in" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    wait_status(&app, id, "implementation_review").await;
    driver.abort();
    assert_eq!(git(&repo, &["show", &format!("{branch}:a.txt")]), "a");
    // The broadcast reached the session's prompt.
    let prompts: Vec<String> = app
        .store
        .list_transcript(session.id, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == spectask::domain::TranscriptKind::Prompt)
        .map(|e| e.content)
        .collect();
    assert!(
        prompts[0].contains("[broadcast from a person] use tabs, not spaces"),
        "{prompts:?}"
    );
    let statuses: Vec<String> = app
        .store
        .list_events(0, Some(SpecTaskId(id)), 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "work_session.status_changed" && e.entity_id == Some(session.id.0))
        .map(|e| e.data["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        statuses,
        [
            "running",
            "blocked",
            "running",
            "verifying",
            "merging",
            "completed"
        ]
    );
    app.shutdown().await;
}

/// Approving is one store transaction (the status and the verdict) followed by the
/// `spec.json` commit. A server that dies between the two leaves an approved task
/// whose branch does not say so yet: the implementer's first step of the task makes
/// that commit, once, before anything is cut from the branch; a normal approval is
/// not committed a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_a_crash_cut_short_is_committed_once_by_the_implementer() {
    use spectask::domain::{SpecTaskEvent, SpecTaskId, Verdict};
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let plan = "- [ ] 1. One\n  - write one.txt one\n";

    // The approval's store half only, as a crash right after it would leave it.
    let cut = app.task(project, "Cut short").await;
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{cut}/start-planning"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let spec_dir = format!("specs/{}", body["spec_dir_name"].as_str().unwrap());
    let number = common::spec::record_spec(&app, cut, common::spec::DESIGN, plan).await;
    let version = app
        .store
        .get_spec_version(SpecTaskId(cut), number)
        .await
        .unwrap();
    let (task, review) = app
        .store
        .review_spec_task(
            SpecTaskId(cut),
            &SpecTaskEvent::Approve,
            version.id,
            Verdict::Approved,
            "token:1",
        )
        .await
        .unwrap();
    assert_eq!(task.status.as_str(), "implementing");
    assert_eq!(review.verdict, Verdict::Approved);
    let approvals = |branch: &str| {
        git(&repo, &["log", "--format=%s", branch])
            .lines()
            .filter(|l| l.contains("approved by"))
            .count()
    };
    assert_eq!(approvals(&task.branch), 0);

    // And one approved the normal way.
    let whole = approved_plan(&app, project, "Whole", plan).await;
    let whole_branch = app
        .store
        .get_spec_task(SpecTaskId(whole))
        .await
        .unwrap()
        .branch;
    assert_eq!(approvals(&whole_branch), 1);

    let driver = drive(&app);
    wait_status(&app, cut, "implementation_review").await;
    wait_status(&app, whole, "implementation_review").await;
    driver.abort();
    assert_eq!(
        approvals(&task.branch),
        1,
        "the cut-short approval is finished"
    );
    assert_eq!(approvals(&whole_branch), 1, "and the whole one not redone");
    let spec_json: serde_json::Value = serde_json::from_str(&git(
        &repo,
        &["show", &format!("{}:{spec_dir}/spec.json", task.branch)],
    ))
    .unwrap();
    assert_eq!(spec_json["status"], "approved");
    assert_eq!(spec_json["approved_version"], number);
    assert_eq!(spec_json["approved_by"], "token:1");
    assert_eq!(spec_json["approved_commit"], version.commit_sha);
    // The approval commit comes before the session's work on the branch.
    let log = git(&repo, &["log", "--format=%s", "--reverse", &task.branch]);
    let approved_at = log.lines().position(|l| l.contains("approved by")).unwrap();
    let merged_at = log
        .lines()
        .position(|l| l.contains("merge task 1"))
        .unwrap();
    assert!(approved_at < merged_at, "{log}");
    app.shutdown().await;
}
