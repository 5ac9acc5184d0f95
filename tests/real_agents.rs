//! Real ACP agents — the programs people use, installed pinned by
//! `scripts/install-agents` into `target/agents` — run spec tasks on the real
//! `spectask serve`, each with its own HOME, against the scripted model endpoint
//! (`tests/model/endpoint.py`): the model is the one part that cannot run here.
//!
//! Each test that passes writes `target/agents-matrix/<agent>.<step>` with the agent's
//! version; `scripts/agents-matrix` turns those into the README's compatibility table.
//! An agent that is not installed fails its tests: nothing is skipped.

#[path = "real_agents/agents.rs"]
mod agents;
mod common;
#[allow(dead_code)]
#[path = "runs/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agents::{Agent, CLAUDE, Endpoint, OPENCODE, QWEN};
use common::app::git;
use reqwest::Method;
use serde_json::{Value, json};
use server::{Api, Server};

/// The longest a whole run may take.
const RUN: Duration = Duration::from_secs(240);

/// A server whose default agent is `agent`, a project on a fresh repository, and the
/// model endpoint with `script`.
struct Rig {
    dir: tempfile::TempDir,
    server: Server,
    endpoint: Endpoint,
    repo: PathBuf,
    project: i64,
    agent: &'static Agent,
}

impl Rig {
    async fn start(agent: &'static Agent, script: Value, settings: Value) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint::start(dir.path(), &script).await;
        let agents::Served {
            server,
            repo,
            project,
        } = agents::serve(agent, dir.path(), &endpoint.url, settings).await;
        Rig {
            dir,
            server,
            endpoint,
            repo,
            project,
            agent,
        }
    }

    fn api(&self) -> &Api {
        &self.server.api
    }

    async fn get(&self, path: &str) -> Value {
        self.api().ok(Method::GET, path, None).await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.api().ok(Method::POST, path, Some(body)).await.unwrap()
    }

    /// Waits until `check` gives something, on the event log (a long poll per
    /// round), at most `bound`.
    async fn until<T, F, Fut>(&self, what: &str, bound: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + bound;
        let mut after = self.get("/events?limit=1").await["last_id"]
            .as_i64()
            .unwrap_or(0);
        loop {
            if let Some(found) = check().await {
                return found;
            }
            if Instant::now() > deadline {
                let mut transcripts = String::new();
                for t in self.get("/spec-tasks").await["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    transcripts.push_str(&Box::pin(self.dump(t["id"].as_i64().unwrap())).await);
                }
                panic!(
                    "{what}: not within {bound:?}\nserver log:\n{}\nmodel requests: {}\n{transcripts}",
                    self.server.log(),
                    self.endpoint.requests().len()
                );
            }
            let page = self
                .get(&format!("/events?after={after}&wait=2&limit=500"))
                .await;
            if let Some(last) = page["last_id"].as_i64() {
                after = after.max(last);
            }
        }
    }

    async fn task_status(&self, task: i64) -> Value {
        self.get(&format!("/spec-tasks/{task}")).await
    }

    async fn wait_status(&self, task: i64, wanted: &[&str], bound: Duration) -> Value {
        self.until(
            &format!("task {task} reaching {wanted:?}"),
            bound,
            || async {
                let body = self.task_status(task).await;
                let status = body["status"].as_str().unwrap_or("").to_string();
                if wanted.contains(&status.as_str()) {
                    return Some(body);
                }
                if ["failed", "cancelled"].contains(&status.as_str()) {
                    panic!("task {task} ended {status}: {body}\n{}", self.server.log());
                }
                None
            },
        )
        .await
    }

    /// A task planned by the agent and approved.
    async fn approved_task(&self, prompt: &str) -> i64 {
        let task = self
            .post(
                "/spec-tasks",
                json!({ "prompt": prompt, "project_id": self.project }),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        self.post(&format!("/spec-tasks/{task}/start-planning"), json!({}))
            .await;
        self.wait_status(task, &["spec_review"], RUN).await;
        self.post(&format!("/spec-tasks/{task}/approve"), json!({}))
            .await;
        task
    }

    async fn sessions(&self, task: i64) -> Vec<Value> {
        self.get(&format!("/spec-tasks/{task}/sessions"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The agent's version from its `initialize` answer, as an instance records it.
    async fn version(&self) -> String {
        for t in self.get("/spec-tasks").await["items"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let agent = self.get(&format!("/spec-tasks/{}/agent", t["id"])).await;
            if let Some(v) = agent["agent_version"].as_str() {
                return v.to_string();
            }
        }
        "unknown".into()
    }

    /// Records that `step` passed for this agent, for the compatibility table.
    async fn passed(&self, step: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/agents-matrix");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{}.{step}", self.agent.name)),
            self.version().await,
        )
        .unwrap();
    }

    /// Each session's transcript, for a failure's message.
    async fn dump(&self, task: i64) -> String {
        let mut out = String::new();
        for s in self.sessions(task).await {
            out.push_str(&format!(
                "== session {} {} {}\n",
                s["id"], s["name"], s["status"]
            ));
            let t = self.get(&format!("/sessions/{}/transcript", s["id"])).await;
            for e in t.as_array().into_iter().flatten() {
                let data = e["data"].to_string();
                out.push_str(&format!(
                    "{}: {} {}\n",
                    e["kind"],
                    e["content"].as_str().unwrap_or(""),
                    &data[..data.len().min(300)]
                ));
            }
        }
        out
    }

    async fn stop(self) {
        self.server.stop().await;
        drop(self.dir);
    }
}

// --- scripts ------------------------------------------------------------------

const REQUIREMENTS: &str = "# Requirements Document\n\n## Introduction\n\nGreeting files.\n\n## Requirements\n\n### Requirement 1: Greetings\n\n**User Story:** As a reader, I want greeting files, so that I am greeted.\n\n#### Acceptance Criteria\n\n1. The system SHALL have a file one.txt saying one\n2. The system SHALL have a file two.txt saying two\n\n### Requirement 2: Together\n\n**User Story:** As a reader, I want both at once, so that I read less.\n\n#### Acceptance Criteria\n\n1. WHEN both files exist THEN the system SHALL have three.txt holding both\n";

const DESIGN: &str = "# Design\n\n## Overview\n\nThree text files in the repository root.\n";

const PLAN: &str = "# Implementation Plan\n\n- [ ] 1. Write one (P)\n  - _Requirements: 1.1_\n- [ ] 2. Write two (P)\n  - _Requirements: 1.2_\n- [ ] 3. Join them\n  - _Requirements: 2.1_\n  - _Depends: 1, 2_\n";

/// Variables the endpoint reads out of spectask's default prompts.
fn vars() -> Value {
    json!({
        "spec_dir": "in the folder (\\S+) and nothing else",
        "worktree": "Your worktree is (\\S+?): change files only there",
    })
}

fn planning_scenario() -> Value {
    json!({"name": "planning", "match": "Write exactly these three files", "steps": [
        {"write": {"path": "{{spec_dir}}/requirements.md", "content": REQUIREMENTS}},
        {"write": {"path": "{{spec_dir}}/design.md", "content": DESIGN}},
        {"write": {"path": "{{spec_dir}}/tasks.md", "content": PLAN}},
        {"say": "The spec is written."}
    ]})
}

/// Task `key` writes `file` and shows it with a shell command.
fn task_scenario(key: &str, file: &str, text: &str) -> Value {
    json!({"name": format!("task {key}"), "match": format!("Task {key}: "), "steps": [
        {"write": {"path": format!("{{{{worktree}}}}/{file}"), "content": format!("{text}\n")}},
        {"shell": {"command": format!("cat {file} && ls")}},
        {"say": format!("Task {key} is done.")}
    ]})
}

fn whole_run_script() -> Value {
    json!({"vars": vars(), "scenarios": [
        planning_scenario(),
        task_scenario("1", "one.txt", "one"),
        task_scenario("2", "two.txt", "two"),
        {"name": "task 3", "match": "Task 3: ", "steps": [
            {"shell": {"command": "cat one.txt two.txt > three.txt && cat three.txt"}},
            {"say": "Task 3 is done."}
        ]}
    ]})
}

fn auto() -> Value {
    json!({ "permission_policy": "auto", "max_parallel_sessions": 3 })
}

// --- the tests ----------------------------------------------------------------

async fn a_spec_task_runs_from_prompt_to_merged_work(agent: &'static Agent) {
    let rig = Rig::start(agent, whole_run_script(), auto()).await;
    let task = rig.approved_task("Add greeting files").await;
    rig.passed("planning").await;
    let done = rig
        .wait_status(task, &["implementation_review", "done"], RUN)
        .await;
    let branch = done["branch"].as_str().unwrap().to_string();
    let files = git(&rig.repo, &["ls-tree", "--name-only", &branch]);
    if !files.contains("three.txt") {
        panic!("{}", rig.dump(task).await);
    }
    let show = |file: &str| git(&rig.repo, &["show", &format!("{branch}:{file}")]);
    assert_eq!(show("one.txt"), "one\n");
    assert_eq!(show("two.txt"), "two\n");
    assert_eq!(show("three.txt"), "one\ntwo\n");
    // Every session merged once.
    let sessions: Vec<Value> = rig
        .sessions(task)
        .await
        .into_iter()
        .filter(|s| s["kind"] == "implementation")
        .collect();
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let merges = git(&rig.repo, &["log", "--merges", "--format=%s", &branch]);
    for s in &sessions {
        let name = format!("(session {})", s["id"]);
        assert_eq!(
            merges.lines().filter(|l| l.ends_with(&name)).count(),
            1,
            "{name} in\n{merges}"
        );
    }
    // What the agent did is readable in its history file.
    let spec = format!("specs/{}", done["spec_dir_name"].as_str().unwrap());
    let files = git(
        &rig.repo,
        &[
            "ls-tree",
            "--name-only",
            &branch,
            &format!("{spec}/history/"),
        ],
    );
    let first = files
        .lines()
        .find(|f| f.contains("session-"))
        .expect("a history file");
    let history = git(&rig.repo, &["show", &format!("{branch}:{first}")]);
    let one = files
        .lines()
        .filter(|f| f.contains("session-"))
        .map(|f| git(&rig.repo, &["show", &format!("{branch}:{f}")]))
        .find(|h| h.contains(": task 1 — "))
        .unwrap_or(history);
    assert!(one.contains("```diff") && one.contains("+one"), "{one}");
    assert!(one.contains("Output:") && one.contains("one\n"), "{one}");
    assert_eq!(one.contains("Exit status: 0"), agent.exit_status, "{one}");
    assert!(!one.contains("interrupted"), "{one}");
    assert!(!one.contains("tool_call_update"), "{one}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/agents-matrix");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(format!("{}-history.md", agent.name)), &one).unwrap();
    rig.passed("implementation").await;
    rig.stop().await;
}

// --- when things go wrong -------------------------------------------------------

const PLAN_ONE: &str =
    "# Implementation Plan\n\n- [ ] 1. Write one\n  - _Requirements: 1.1, 1.2, 2.1_\n";

/// Planning writes a one-task plan; task 1 does `steps`.
fn one_task_script(steps: Value) -> Value {
    let mut planning = planning_scenario();
    planning["steps"][2] = json!({"write": {"path": "{{spec_dir}}/tasks.md", "content": PLAN_ONE}});
    json!({"vars": vars(), "scenarios": [
        planning,
        {"name": "task 1", "match": "Task 1: ", "steps": steps}
    ]})
}

fn write_one() -> Vec<Value> {
    vec![
        json!({"write": {"path": "{{worktree}}/one.txt", "content": "one\n"}}),
        json!({"say": "Task 1 is done."}),
    ]
}

impl Rig {
    /// Waits until the model has been asked for task 1's step `step` by the agent's
    /// turn itself: a request with tools, not a side request on the same first
    /// message (OpenCode asks for a session title with it, in parallel).
    async fn model_asked(&self, step: i64) {
        self.until("the model asked for task 1", RUN, || async {
            self.endpoint
                .requests()
                .iter()
                .any(|r| {
                    r["scenario"] == "task 1"
                        && r["step"] == step
                        && r["tools"].as_array().is_some_and(|t| !t.is_empty())
                })
                .then_some(())
        })
        .await
    }

    async fn implementation_sessions(&self, task: i64) -> Vec<Value> {
        self.sessions(task)
            .await
            .into_iter()
            .filter(|s| s["kind"] == "implementation")
            .collect()
    }

    /// The task ends with one.txt on its branch, merged once.
    async fn one_merged(&self, task: i64) {
        let done = self
            .wait_status(task, &["implementation_review", "done"], RUN)
            .await;
        let branch = done["branch"].as_str().unwrap();
        if !git(&self.repo, &["ls-tree", "--name-only", branch]).contains("one.txt") {
            panic!("one.txt is not on {branch}:\n{}", self.dump(task).await);
        }
        assert_eq!(
            git(&self.repo, &["show", &format!("{branch}:one.txt")]),
            "one\n"
        );
        let merges = git(&self.repo, &["log", "--merges", "--format=%s", branch]);
        assert_eq!(merges.lines().count(), 1, "{merges}");
    }
}

async fn a_cancel_during_a_stalled_model_call_ends_the_turn_at_once(agent: &'static Agent) {
    let rig = Rig::start(agent, one_task_script(json!([{"stall": 120}])), auto()).await;
    let task = rig.approved_task("Add greeting files").await;
    rig.model_asked(0).await;
    let session = rig.implementation_sessions(task).await[0]["id"].clone();
    let asked = Instant::now();
    rig.post(&format!("/sessions/{session}/cancel"), json!({}))
        .await;
    let stop = rig
        .until("the turn's end", Duration::from_secs(20), || async {
            let t = rig.get(&format!("/sessions/{session}/transcript")).await;
            t.as_array()?
                .iter()
                .find(|e| e["kind"] == "stop_reason")
                .map(|e| e["content"].as_str().unwrap_or("").to_string())
        })
        .await;
    let took = asked.elapsed();
    eprintln!("{}: cancel → turn ended in {took:?}", agent.name);
    assert_eq!(stop, "Cancelled");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let s = rig.get(&format!("/sessions/{session}")).await;
    assert_eq!(s["status"], "cancelled", "{s}");
    rig.passed("cancel").await;
    rig.stop().await;
}

async fn the_agent_killed_mid_turn_is_retried_and_the_task_completes(agent: &'static Agent) {
    let mut steps = vec![json!({"stall": 120, "times": 1})];
    steps.extend(write_one());
    let rig = Rig::start(agent, one_task_script(Value::Array(steps)), auto()).await;
    let task = rig.approved_task("Add greeting files").await;
    rig.model_asked(0).await;
    let pid = rig.get(&format!("/spec-tasks/{task}/agent")).await["pid"]
        .as_i64()
        .expect("the agent runs");
    // SAFETY: kill(2) on the agent's pid; no memory is touched.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    rig.one_merged(task).await;
    rig.passed("crash-retry").await;
    rig.stop().await;
}

async fn the_server_killed_mid_run_resumes_the_agents_sessions(agent: &'static Agent) {
    let mut steps = vec![json!({"stall": 120, "times": 1})];
    steps.extend(write_one());
    let mut rig = Rig::start(agent, one_task_script(Value::Array(steps)), auto()).await;
    let task = rig.approved_task("Add greeting files").await;
    rig.model_asked(0).await;
    let old_pid = rig.get(&format!("/spec-tasks/{task}/agent")).await["pid"].as_i64();
    rig.server.crash_and_restart().await.unwrap();
    if let Some(pid) = old_pid {
        // The old agent lost its server; it must not write into the task any more.
        // SAFETY: kill(2) on a pid; no memory is touched.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    rig.one_merged(task).await;
    rig.passed("resume").await;
    rig.stop().await;
}

async fn a_model_that_fails_fails_the_session_with_a_readable_reason(agent: &'static Agent) {
    let script =
        one_task_script(json!([{"error": {"status": 500, "body": "the model is overloaded"}}]));
    // One attempt: each agent retries the model with its own backoff (qwen-code and
    // OpenCode for about a minute) before it fails the turn; spectask's own retries
    // of a failed session are tested with the scripted agent.
    let settings =
        json!({ "permission_policy": "auto", "max_parallel_sessions": 3, "max_attempts": 1 });
    let rig = Rig::start(agent, script, settings).await;
    let task = rig.approved_task("Add greeting files").await;
    let failed = rig
        .until("the session failing", RUN, || async {
            let s = rig.implementation_sessions(task).await;
            s.into_iter()
                .find(|s| s["status"] == "failed" || s["status"] == "needs_review")
        })
        .await;
    let reason = failed["failure_reason"].as_str().unwrap_or("").to_string();
    eprintln!("{}: the session failed: {reason}", agent.name);
    assert!(
        reason.contains("500")
            || reason.contains("overloaded")
            || reason.to_lowercase().contains("error"),
        "{failed}\n{}",
        rig.dump(task).await
    );
    rig.passed("model-errors").await;
    rig.stop().await;
}

async fn permissions_asked_wait_for_a_person_and_the_answer_goes_through(agent: &'static Agent) {
    // ask: each request the agent sends waits for a person, answered through the API
    // (planning's writes too); the whole run under auto is the first test.
    let settings = json!({ "permission_policy": "ask", "max_parallel_sessions": 3 });
    let rig = Rig::start(agent, one_task_script(json!(write_one())), settings).await;
    let task = rig
        .post(
            "/spec-tasks",
            json!({ "prompt": "Add greeting files", "project_id": rig.project }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    rig.post(&format!("/spec-tasks/{task}/start-planning"), json!({}))
        .await;
    let answered = std::cell::Cell::new(0);
    let done = rig
        .until("the asking task's end", RUN, || async {
            let pending = rig
                .get(&format!("/permissions?status=pending&spec_task={task}"))
                .await;
            for p in pending.as_array().into_iter().flatten() {
                let allow = p["options"]
                    .as_array()
                    .and_then(|o| o.iter().find(|o| o["kind"] == "allow_once"))
                    .map(|o| o["optionId"].clone())
                    .expect("an allow_once option");
                rig.post(
                    &format!("/permissions/{}/answer", p["id"]),
                    json!({ "option_id": allow }),
                )
                .await;
                answered.set(answered.get() + 1);
            }
            let t = rig.task_status(task).await;
            match t["status"].as_str().unwrap_or("") {
                "spec_review" => {
                    rig.post(&format!("/spec-tasks/{task}/approve"), json!({}))
                        .await;
                    None
                }
                "implementation_review" | "done" => Some(t),
                "failed" | "cancelled" => panic!("{t}"),
                _ => None,
            }
        })
        .await;
    assert!(answered.get() >= 2, "{} permissions asked", answered.get());
    let branch = done["branch"].as_str().unwrap();
    assert_eq!(
        git(&rig.repo, &["show", &format!("{branch}:one.txt")]),
        "one\n"
    );
    rig.passed("permissions").await;
    rig.stop().await;
}

/// The tests above that an agent passes, in a module of its own. A step an agent
/// does not pass yet is left out here and shows as not passing in the table.
macro_rules! agent_tests {
    ($module:ident, $agent:ident, $($test:ident),+ $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(&super::$agent).await;
                }
            )+
        }
    };
}

agent_tests!(
    qwen,
    QWEN,
    a_spec_task_runs_from_prompt_to_merged_work,
    permissions_asked_wait_for_a_person_and_the_answer_goes_through,
    a_cancel_during_a_stalled_model_call_ends_the_turn_at_once,
    the_agent_killed_mid_turn_is_retried_and_the_task_completes,
    the_server_killed_mid_run_resumes_the_agents_sessions,
    a_model_that_fails_fails_the_session_with_a_readable_reason,
);
agent_tests!(
    claude,
    CLAUDE,
    a_spec_task_runs_from_prompt_to_merged_work,
    permissions_asked_wait_for_a_person_and_the_answer_goes_through,
    a_cancel_during_a_stalled_model_call_ends_the_turn_at_once,
    the_agent_killed_mid_turn_is_retried_and_the_task_completes,
    the_server_killed_mid_run_resumes_the_agents_sessions,
    a_model_that_fails_fails_the_session_with_a_readable_reason,
);
// opencode: a session cancelled during a stalled model call gets no end of its turn
// within 20 s through spectask (a bare client sees `cancelled` at once), so cancel is
// not in its list.
agent_tests!(
    opencode,
    OPENCODE,
    a_spec_task_runs_from_prompt_to_merged_work,
    permissions_asked_wait_for_a_person_and_the_answer_goes_through,
    a_cancel_during_a_stalled_model_call_ends_the_turn_at_once,
    the_agent_killed_mid_turn_is_retried_and_the_task_completes,
    the_server_killed_mid_run_resumes_the_agents_sessions,
    a_model_that_fails_fails_the_session_with_a_readable_reason,
);
