//! Agents over ACP, with real agent processes over real pipes: the scripted test
//! agent (this repository's `spectask-test-agent`) for behaviour and faults, and the
//! Python SDK's example echo agent for conformance with an agent we did not write.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::app::{TestApp, spawn_app_with};
use common::db::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spectask::agents::profile::AgentProfile;
use spectask::agents::protocol::{AgentUpdate, StopReason};
use spectask::agents::runtime::{AgentError, AgentRuntime, RestartPolicy, Timeouts};
use spectask::domain::*;
use spectask::store::NewWorkSession;

const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const WAIT: Duration = Duration::from_secs(20);

fn profile(command: &str, args: &[&str]) -> AgentProfile {
    AgentProfile::new(command, args)
}

/// An app whose default agent is the scripted test agent, with quick restarts.
async fn app_with(backend: Backend, extra: Vec<(&str, AgentProfile)>) -> TestApp {
    spawn_app_with(backend, |config| {
        config
            .agent_profiles
            .insert("test".into(), profile(AGENT, &[]));
        for (name, p) in extra {
            config.agent_profiles.insert(name.into(), p);
        }
        config.default_agent = "test".into();
        config.agent_timeouts = Timeouts {
            initialize: Duration::from_secs(2),
            request: Duration::from_secs(10),
            turn: Duration::from_secs(30),
            sample_every: Duration::from_millis(100),
        };
        config.agent_restart = RestartPolicy {
            max_restarts: 2,
            backoff: Duration::from_millis(50),
        };
    })
    .await
}

async fn task(app: &TestApp) -> i64 {
    let project = app.project().await;
    app.task(project, "agents").await
}

async fn session(app: &TestApp, task: i64, name: &str) -> i64 {
    let new = NewWorkSession {
        spec_task_id: SpecTaskId(task),
        parent_id: None,
        implementation_task_id: None,
        kind: WorkSessionKind::Implementation,
        name: name.into(),
        prompt: String::new(),
    };
    app.store
        .create_work_session(new, "system")
        .await
        .unwrap()
        .id
        .0
}

fn worktree(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// The text of a session's transcript entries of one kind.
async fn entries(app: &TestApp, ws: i64, kind: TranscriptKind) -> Vec<String> {
    app.store
        .list_transcript(WorkSessionId(ws), 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.content)
        .collect()
}

/// Waits (with a timeout) until an agent message for `ws` contains `needle`.
async fn wait_message(
    rx: &mut tokio::sync::broadcast::Receiver<spectask::agents::host::LiveUpdate>,
    ws: i64,
    needle: &str,
) {
    tokio::time::timeout(WAIT, async {
        loop {
            let live = rx.recv().await.unwrap();
            if live.work_session_id == WorkSessionId(ws)
                && matches!(&live.update, AgentUpdate::Message(t) if t.contains(needle))
            {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no message containing {needle:?} for session {ws}"));
}

/// Waits, on the event log, until the task's instance matches `pred`.
async fn wait_instance(
    app: &TestApp,
    task: i64,
    pred: impl Fn(&AgentInstance) -> bool,
) -> AgentInstance {
    let mut events = app.store.subscribe_events();
    tokio::time::timeout(WAIT, async {
        loop {
            let instance = app
                .store
                .get_agent_instance(SpecTaskId(task))
                .await
                .unwrap();
            if pred(&instance) {
                return instance;
            }
            events.changed().await.unwrap();
        }
    })
    .await
    .expect("the instance reached the expected state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_threads_run_concurrently_and_cancelling_one_leaves_the_other() {
    let app = app_with(Backend::Sqlite, vec![]).await;
    let task = task(&app).await;
    let (s1, s2) = (
        session(&app, task, "one").await,
        session(&app, task, "two").await,
    );
    let dir = tempfile::tempdir().unwrap();
    let (wt1, wt2) = (worktree(dir.path(), "wt1"), worktree(dir.path(), "wt2"));
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    let info = rt.start().await.unwrap();
    assert_eq!(info.name.as_deref(), Some("spectask-test-agent"));
    rt.open_thread(WorkSessionId(s1), wt1.clone())
        .await
        .unwrap();
    rt.open_thread(WorkSessionId(s2), wt2.clone())
        .await
        .unwrap();
    let mut live = app.agents.subscribe();

    let (r1, r2) = (rt.clone(), rt.clone());
    let one = tokio::spawn(async move {
        r1.prompt(WorkSessionId(s1), "write a.txt one\nsay a-started\nhang")
            .await
    });
    let two = tokio::spawn(async move {
        r2.prompt(
            WorkSessionId(s2),
            "sleep 300\nwrite b.txt two\nrun pwd\nsay b-done",
        )
        .await
    });
    wait_message(&mut live, s1, "a-started").await;
    rt.cancel(WorkSessionId(s1)).await.unwrap();
    // A hung turn ends within a second of the cancel.
    let first = tokio::time::timeout(Duration::from_secs(1), one)
        .await
        .expect("cancelled within a second")
        .unwrap()
        .unwrap();
    assert_eq!(first, StopReason::Cancelled);
    assert_eq!(two.await.unwrap().unwrap(), StopReason::EndTurn);

    // Each thread worked in its own cwd.
    assert_eq!(std::fs::read_to_string(wt1.join("a.txt")).unwrap(), "one");
    assert_eq!(std::fs::read_to_string(wt2.join("b.txt")).unwrap(), "two");
    assert!(!wt1.join("b.txt").exists() && !wt2.join("a.txt").exists());
    let messages = entries(&app, s2, TranscriptKind::Message).await;
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&format!("ran pwd: exit 0: {}", wt2.display()))),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.contains("b-done")));
    let stops = entries(&app, s1, TranscriptKind::StopReason).await;
    assert_eq!(stops, ["Cancelled"]);
    let threads = app
        .store
        .list_agent_threads(SpecTaskId(task))
        .await
        .unwrap();
    assert_eq!(threads.len(), 2);
    assert!(threads.iter().all(|t| t.status == AgentThreadStatus::Idle));
    assert_ne!(threads[0].acp_session_id, threads[1].acp_session_id);
    rt.stop().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_chunks_are_coalesced_into_one_entry() {
    let app = app_with(Backend::Sqlite, vec![]).await;
    let task = task(&app).await;
    let ws = session(&app, task, "chatty").await;
    let dir = tempfile::tempdir().unwrap();
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.open_thread(WorkSessionId(ws), worktree(dir.path(), "wt"))
        .await
        .unwrap();
    let text = "x".repeat(2000);
    let reason = rt
        .prompt(
            WorkSessionId(ws),
            &format!(
                "think let me see\nstream 200 {text}\ntool Edit files\nplan a | b\nusage 10 100 0.5"
            ),
        )
        .await
        .unwrap();
    assert_eq!(reason, StopReason::EndTurn);
    let all = app
        .store
        .list_transcript(WorkSessionId(ws), 0)
        .await
        .unwrap();
    let kinds: Vec<TranscriptKind> = all.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            TranscriptKind::Prompt,
            TranscriptKind::Thought,
            TranscriptKind::Message,
            TranscriptKind::ToolCall,
            TranscriptKind::ToolCallUpdate,
            TranscriptKind::Plan,
            TranscriptKind::Usage,
            TranscriptKind::StopReason
        ],
        "200 chunks make one message entry"
    );
    assert_eq!(all[2].content, text);
    assert_eq!(all[6].data["cost"], 0.5);
    rt.stop().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_out_of_the_worktree_is_refused() {
    let app = app_with(Backend::Sqlite, vec![]).await;
    let task = task(&app).await;
    let ws = session(&app, task, "escaper").await;
    let dir = tempfile::tempdir().unwrap();
    let wt = worktree(dir.path(), "wt");
    let outside = worktree(dir.path(), "outside");
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(&outside, wt.join("escape")).unwrap();
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.open_thread(WorkSessionId(ws), wt.clone()).await.unwrap();
    let script = format!(
        "write ../x.txt bad\nwrite {abs}/abs.txt bad\nwrite escape/link.txt bad\nread {abs}/secret.txt\n\
         read escape/secret.txt\nrun cat secret.txt\nwrite inside/ok.txt good\nread inside/ok.txt",
        abs = outside.display()
    );
    rt.prompt(WorkSessionId(ws), &script).await.unwrap();
    for f in ["x.txt", "abs.txt", "link.txt"] {
        assert!(
            !outside.join(f).exists() && !dir.path().join(f).exists(),
            "{f} was written"
        );
    }
    assert_eq!(
        std::fs::read_to_string(wt.join("inside/ok.txt")).unwrap(),
        "good"
    );
    let messages = entries(&app, ws, TranscriptKind::Message).await.join("\n");
    for refused in [
        "write ../x.txt",
        "/abs.txt",
        "write escape/link.txt",
        "secret.txt: ",
        "read escape/secret.txt",
    ] {
        let line = messages
            .lines()
            .find(|l| l.contains(refused))
            .unwrap_or_else(|| panic!("{refused}: {messages}"));
        assert!(
            line.starts_with("error:") && line.contains("outside the session's worktree"),
            "{line}"
        );
    }
    assert!(
        !messages.lines().any(|l| l.ends_with(": secret")),
        "the secret leaked: {messages}"
    );
    assert!(messages.contains("read inside/ok.txt: good"), "{messages}");
    let refusals = app
        .store
        .list_events(0, Some(SpecTaskId(task)), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "agent.access_refused")
        .count();
    assert_eq!(refusals, 5);
    rt.stop().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_turn_interrupts_the_thread_and_the_instance_restarts_on_sqlite() {
    a_crash_mid_turn_interrupts_the_thread_and_the_instance_restarts(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_turn_interrupts_the_thread_and_the_instance_restarts_on_postgres() {
    a_crash_mid_turn_interrupts_the_thread_and_the_instance_restarts(Backend::Postgres).await;
}

async fn a_crash_mid_turn_interrupts_the_thread_and_the_instance_restarts(backend: Backend) {
    let app = app_with(backend, vec![]).await;
    let task = task(&app).await;
    let ws = session(&app, task, "fragile").await;
    let dir = tempfile::tempdir().unwrap();
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.open_thread(WorkSessionId(ws), worktree(dir.path(), "wt"))
        .await
        .unwrap();
    let first_pid = rt.pid().await.unwrap();
    let err = rt
        .prompt(WorkSessionId(ws), "say before\ncrash 5")
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Interrupted(_)), "{err:?}");
    let instance = wait_instance(&app, task, |i| {
        i.restarts == 1 && i.status == AgentInstanceStatus::Ready
    })
    .await;
    let reason = instance.last_error.unwrap();
    assert!(
        reason.contains("crashing as asked"),
        "the reason carries the agent's stderr: {reason}"
    );
    let thread = app.store.get_agent_thread(WorkSessionId(ws)).await.unwrap();
    assert_eq!(thread.status, AgentThreadStatus::Interrupted);
    let interrupted = app
        .store
        .list_events(0, Some(SpecTaskId(task)), 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "agent_thread.status_changed" && e.data["to"] == "interrupted")
        .expect("the interruption is recorded");
    assert!(
        interrupted.data["reason"]
            .as_str()
            .unwrap()
            .contains("crashing as asked")
    );
    let errors = entries(&app, ws, TranscriptKind::Error).await;
    assert!(
        errors.iter().any(|e| e.contains("crashing as asked")),
        "{errors:?}"
    );

    assert_ne!(rt.pid().await.unwrap(), first_pid, "a new process");
    assert_eq!(
        rt.prompt(WorkSessionId(ws), "say after").await.unwrap(),
        StopReason::EndTurn
    );
    assert!(
        entries(&app, ws, TranscriptKind::Message)
            .await
            .iter()
            .any(|m| m.contains("after"))
    );
    assert_eq!(
        app.store
            .get_agent_thread(WorkSessionId(ws))
            .await
            .unwrap()
            .status,
        AgentThreadStatus::Idle
    );
    let kinds: Vec<String> = app
        .store
        .list_events(0, Some(SpecTaskId(task)), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "agent_instance.status_changed")
        .map(|e| e.data["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["ready", "crashed", "starting", "ready"]);
    rt.stop().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_agents_fail_with_a_clear_error_not_a_hang() {
    let app = app_with(
        Backend::Sqlite,
        vec![
            ("silent", profile(AGENT, &["--no-initialize"])),
            ("noisy", profile(AGENT, &["--garbage-on-start"])),
            ("missing", profile("no-such-agent-binary-xyz", &[])),
            ("dies", profile(AGENT, &["--crash-on-start"])),
        ],
    )
    .await;
    let project = app.project().await;
    for (name, expected) in [
        ("silent", "did not answer initialize within 2s"),
        ("noisy", "not JSON-RPC"),
        ("missing", "not installed"),
        ("dies", "crashed on start"),
    ] {
        let t = task_with_profile(&app, project, name).await;
        let rt = app.agents.runtime(SpecTaskId(t)).await.unwrap();
        let err = tokio::time::timeout(WAIT, rt.start())
            .await
            .expect("no hang")
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{name}: {err}");
        let instance = app.store.get_agent_instance(SpecTaskId(t)).await.unwrap();
        assert_eq!(instance.status, AgentInstanceStatus::Crashed, "{name}");
        assert!(instance.last_error.unwrap().contains(expected), "{name}");
    }
    let (status, body) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": "x", "project_id": project, "agent_profile": "nope" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.shutdown().await;
}

/// A task whose sessions run with agent profile `profile`.
async fn task_with_profile(app: &TestApp, project: i64, profile: &str) -> i64 {
    let (status, body) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": profile, "project_id": project, "agent_profile": profile }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_the_whole_process_tree() {
    let app = app_with(Backend::Sqlite, vec![]).await;
    let task = task(&app).await;
    let ws = session(&app, task, "tree").await;
    let dir = tempfile::tempdir().unwrap();
    let wt = worktree(dir.path(), "wt");
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.open_thread(WorkSessionId(ws), wt.clone()).await.unwrap();
    let pid = rt.pid().await.unwrap();
    let mut live = app.agents.subscribe();
    let r = rt.clone();
    // A grandchild: the agent's terminal runs a shell that runs sleep.
    let turn = tokio::spawn(async move {
        r.prompt(WorkSessionId(ws), "say go\nrun sh -c sleep\\ 60")
            .await
    });
    wait_message(&mut live, ws, "go").await;
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{task}/agent/stop"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "stopped");
    let _ = tokio::time::timeout(WAIT, turn)
        .await
        .expect("the turn ends when the agent stops");
    let alive = |p: i32| Path::new(&format!("/proc/{p}")).exists() && !is_zombie(p);
    tokio::time::timeout(WAIT, async {
        while alive(pid) || group_alive(pid) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every process of the group is gone");
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{task}/agent/restart"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready")),
        "{body}"
    );
    rt.stop().await.unwrap();
    app.shutdown().await;
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// Whether any live process is left in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some(rest) = stat.rfind(')').map(|i| stat[i + 1..].to_string()) else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.first() != Some(&"Z") && f.get(2) == Some(&pgid.to_string().as_str())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_permission_end_to_end_through_the_api_on_sqlite() {
    ask_permission_end_to_end_through_the_api(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_permission_end_to_end_through_the_api_on_postgres() {
    ask_permission_end_to_end_through_the_api(Backend::Postgres).await;
}

async fn ask_permission_end_to_end_through_the_api(backend: Backend) {
    let app = app_with(backend, vec![]).await;
    let project = app.project().await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "permission_policy": "ask" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let task = app.task(project, "ask").await;
    let ws = session(&app, task, "asker").await;
    let dir = tempfile::tempdir().unwrap();
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.open_thread(WorkSessionId(ws), worktree(dir.path(), "wt"))
        .await
        .unwrap();

    let r = rt.clone();
    let turn = tokio::spawn(async move {
        r.prompt(WorkSessionId(ws), "ask Deploy to staging\nsay after-ask")
            .await
    });
    let pending = wait_pending(&app, task).await;
    assert_eq!(pending["title"], "Deploy to staging");
    assert_eq!(pending["work_session_id"], ws);
    let id = pending["id"].as_i64().unwrap();
    let answer = format!("/api/v1/permissions/{id}/answer");
    let (status, body) = app.post(&answer, json!({ "option_id": "launch" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app.post(&answer, json!({ "option_id": "allow" })).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("answered")),
        "{body}"
    );
    assert_eq!(
        tokio::time::timeout(WAIT, turn)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        StopReason::EndTurn
    );
    let messages = entries(&app, ws, TranscriptKind::Message).await.concat();
    assert!(
        messages.contains("permission: allowafter-ask"),
        "{messages:?}"
    );
    let (status, body) = app.post(&answer, json!({ "option_id": "reject" })).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    // Cancelling the session answers its waiting request `cancelled`.
    let r = rt.clone();
    let turn =
        tokio::spawn(async move { r.prompt(WorkSessionId(ws), "ask Delete the database").await });
    let pending = wait_pending(&app, task).await;
    rt.cancel(WorkSessionId(ws)).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, turn)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        StopReason::Cancelled
    );
    // The agent answers `cancelled` at once; the request is recorded as cancelled
    // right after, so wait for that on the event log.
    let mut events = app.store.subscribe_events();
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, list) = app
                .get(&format!("/api/v1/permissions?spec_task={task}"))
                .await;
            let second = list
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == pending["id"])
                .unwrap()
                .clone();
            if second["status"] == "cancelled" {
                return;
            }
            assert_eq!(second["status"], "pending", "{second}");
            events.changed().await.unwrap();
        }
    })
    .await
    .expect("the request is recorded as cancelled");
    assert!(
        entries(&app, ws, TranscriptKind::Message)
            .await
            .concat()
            .ends_with("permission: cancelled")
    );
    let (status, transcript) = app.get(&format!("/api/v1/sessions/{ws}/transcript")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        transcript
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "permission")
    );
    let (_, thread) = app.get(&format!("/api/v1/sessions/{ws}/thread")).await;
    assert_eq!(thread["status"], "idle");
    let (_, instance) = app.get(&format!("/api/v1/spec-tasks/{task}/agent")).await;
    assert_eq!(instance["agent_name"], "spectask-test-agent");
    rt.stop().await.unwrap();
    app.shutdown().await;
}

/// Waits for the task's one pending permission request, on the event log.
async fn wait_pending(app: &TestApp, task: i64) -> Value {
    let mut events = app.store.subscribe_events();
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, list) = app
                .get(&format!(
                    "/api/v1/permissions?status=pending&spec_task={task}"
                ))
                .await;
            if let Some(first) = list.as_array().and_then(|l| l.first()) {
                return first.clone();
            }
            events.changed().await.unwrap();
        }
    })
    .await
    .expect("a pending permission request")
}

/// The Python ACP SDK's example echo agent, installed by `scripts/test`.
fn echo_agent() -> PathBuf {
    let dir = std::env::var("SPECTASK_ACP_PY_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/acp-python/examples")
        });
    let path = dir.join("echo_agent.py");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-acp-python (scripts/test does it)",
        path.display()
    );
    path
}

fn python() -> String {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/acp-python/venv/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_the_python_sdk_echo_agent() {
    let echo = echo_agent();
    let app = app_with(
        Backend::Sqlite,
        vec![("echo", profile(&python(), &[echo.to_str().unwrap()]))],
    )
    .await;
    let project = app.project().await;
    let task = task_with_profile(&app, project, "echo").await;
    let (a, b) = (
        session(&app, task, "a").await,
        session(&app, task, "b").await,
    );
    let dir = tempfile::tempdir().unwrap();
    let rt: Arc<AgentRuntime> = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.start().await.unwrap();
    rt.open_thread(WorkSessionId(a), worktree(dir.path(), "a"))
        .await
        .unwrap();
    rt.open_thread(WorkSessionId(b), worktree(dir.path(), "b"))
        .await
        .unwrap();
    let (ra, rb) = (rt.clone(), rt.clone());
    let (first, second) = tokio::join!(
        async move { ra.prompt(WorkSessionId(a), "hello from A").await },
        async move { rb.prompt(WorkSessionId(b), "hello from B").await },
    );
    assert_eq!(first.unwrap(), StopReason::EndTurn);
    assert_eq!(second.unwrap(), StopReason::EndTurn);
    assert_eq!(
        entries(&app, a, TranscriptKind::Message).await,
        ["hello from A"]
    );
    assert_eq!(
        entries(&app, b, TranscriptKind::Message).await,
        ["hello from B"]
    );
    let threads = app
        .store
        .list_agent_threads(SpecTaskId(task))
        .await
        .unwrap();
    assert_ne!(threads[0].acp_session_id, threads[1].acp_session_id);
    rt.stop().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_is_loaded_again_after_a_crash_when_the_agent_supports_it() {
    let state = tempfile::tempdir().unwrap();
    let app = app_with(
        Backend::Sqlite,
        vec![(
            "persistent",
            profile(AGENT, &["--state-dir", state.path().to_str().unwrap()])
                .writing(&[state.path().to_str().unwrap()]),
        )],
    )
    .await;
    let project = app.project().await;
    let task = task_with_profile(&app, project, "persistent").await;
    let ws = session(&app, task, "durable").await;
    let dir = tempfile::tempdir().unwrap();
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.open_thread(WorkSessionId(ws), worktree(dir.path(), "wt"))
        .await
        .unwrap();
    rt.prompt(WorkSessionId(ws), "say remember me")
        .await
        .unwrap();
    let before = app
        .store
        .get_agent_thread(WorkSessionId(ws))
        .await
        .unwrap()
        .acp_session_id;
    assert!(rt.prompt(WorkSessionId(ws), "crash").await.is_err());
    wait_instance(&app, task, |i| {
        i.restarts == 1 && i.status == AgentInstanceStatus::Ready
    })
    .await;
    assert_eq!(
        rt.prompt(WorkSessionId(ws), "say back again")
            .await
            .unwrap(),
        StopReason::EndTurn
    );
    let thread = app.store.get_agent_thread(WorkSessionId(ws)).await.unwrap();
    assert_eq!(
        thread.acp_session_id, before,
        "the same ACP session, loaded in the new process"
    );
    // The history the agent replays while loading is not recorded a second time.
    let kinds: Vec<TranscriptKind> = app
        .store
        .list_transcript(WorkSessionId(ws), 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert!(!kinds.contains(&TranscriptKind::UserMessage), "{kinds:?}");
    assert_eq!(
        entries(&app, ws, TranscriptKind::Prompt).await,
        ["say remember me", "crash", "say back again"]
    );
    rt.stop().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_and_deny_policies_answer_without_a_person() {
    let app = app_with(Backend::Sqlite, vec![]).await;
    for (policy, expected) in [
        ("auto", "permission: allow"),
        ("deny", "permission: reject"),
    ] {
        let project = app.project().await;
        let (status, _) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/projects/{project}"),
                Some(json!({ "permission_policy": policy })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let task = app.task(project, policy).await;
        let ws = session(&app, task, policy).await;
        let dir = tempfile::tempdir().unwrap();
        let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
        rt.open_thread(WorkSessionId(ws), worktree(dir.path(), "wt"))
            .await
            .unwrap();
        rt.prompt(WorkSessionId(ws), "ask Run the migration")
            .await
            .unwrap();
        let messages = entries(&app, ws, TranscriptKind::Message).await.concat();
        assert_eq!(messages, expected, "{policy}");
        rt.stop().await.unwrap();
    }
    let (_, pending) = app.get("/api/v1/permissions?status=pending").await;
    assert_eq!(pending, json!([]), "nobody was asked");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_hangs_past_its_timeout_is_cancelled_with_a_clear_error() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config
            .agent_profiles
            .insert("test".into(), profile(AGENT, &[]));
        config.default_agent = "test".into();
        config.agent_timeouts.turn = Duration::from_millis(500);
    })
    .await;
    let task = task(&app).await;
    let ws = session(&app, task, "stuck").await;
    let dir = tempfile::tempdir().unwrap();
    let rt = app.agents.runtime(SpecTaskId(task)).await.unwrap();
    rt.open_thread(WorkSessionId(ws), worktree(dir.path(), "wt"))
        .await
        .unwrap();
    let err = tokio::time::timeout(WAIT, rt.prompt(WorkSessionId(ws), "hang"))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        err.to_string().contains("did not answer session/prompt"),
        "{err}"
    );
    // The failed turn's ACP session is left behind: the thread is interrupted and
    // its next turn opens a new one.
    let thread = app.store.get_agent_thread(WorkSessionId(ws)).await.unwrap();
    assert_eq!(thread.status, AgentThreadStatus::Interrupted);
    let failed_acp = thread.acp_session_id.clone().unwrap();
    assert!(entries(&app, ws, TranscriptKind::Error).await[0].contains("session/prompt"));
    // The agent got session/cancel and is free for the next turn.
    assert_eq!(
        rt.prompt(WorkSessionId(ws), "say next").await.unwrap(),
        StopReason::EndTurn
    );
    let thread = app.store.get_agent_thread(WorkSessionId(ws)).await.unwrap();
    assert_eq!(thread.status, AgentThreadStatus::Idle);
    assert_ne!(
        thread.acp_session_id.unwrap(),
        failed_acp,
        "a new ACP session"
    );
    assert_eq!(
        entries(&app, ws, TranscriptKind::Message).await.concat(),
        "next"
    );
    rt.stop().await.unwrap();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_routes_refuse_unknown_ids() {
    let app = app_with(Backend::Sqlite, vec![]).await;
    let task = task(&app).await;
    // A task that never started an agent has none (null, not 404), and stopping it
    // stops nothing.
    let (status, none) = app.get(&format!("/api/v1/spec-tasks/{task}/agent")).await;
    assert_eq!((status, none), (StatusCode::OK, Value::Null));
    let (status, none) = app
        .post(&format!("/api/v1/spec-tasks/{task}/agent/stop"), json!({}))
        .await;
    assert_eq!((status, none), (StatusCode::OK, Value::Null));
    for (method, path) in [
        (Method::GET, "/api/v1/spec-tasks/999/agent".to_string()),
        (
            Method::POST,
            "/api/v1/spec-tasks/999/agent/stop".to_string(),
        ),
        (
            Method::POST,
            "/api/v1/spec-tasks/999/agent/restart".to_string(),
        ),
        (Method::GET, "/api/v1/spec-tasks/999/threads".to_string()),
        (Method::GET, "/api/v1/sessions/999/thread".to_string()),
        (Method::GET, "/api/v1/sessions/999/transcript".to_string()),
        (Method::POST, "/api/v1/permissions/999/answer".to_string()),
    ] {
        let (status, body) = app.call(method.clone(), &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, body) = app.get("/api/v1/permissions?status=maybe").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Nothing was started by the refused calls.
    assert!(
        app.store
            .get_agent_instance(SpecTaskId(task))
            .await
            .is_err()
    );
    app.shutdown().await;
}
