//! `cargo bench --bench sandbox`: what the agent sandbox costs, sandboxed against
//! unsandboxed in the same run, alternating so both see the same machine.
//!
//! 1. Session start: a new spec task's agent started (the sandbox is built and
//!    applied here, once per task) and 10 sessions started on it, each a thread
//!    opened and a one-line turn answered; median over the rounds of each mode.
//!    Goal: ratio 1.05 or less. The agent's start with the first session alone is
//!    reported too (the sandbox's whole cost falls there).
//! 2. A terminal command (`true`) run through spectask's terminals, as an agent's
//!    `terminal/create` runs it: create, wait for exit, release. Goal: at most 2 ms
//!    added per command (median against median).

#[path = "../tests/common/db.rs"]
#[allow(dead_code)]
mod db;

use std::time::{Duration, Instant};

use db::{Backend, TestDb};
use spectask::agents::profile::AgentProfile;
use spectask::agents::sandbox::{Policy, Sandbox};
use spectask::agents::terminals::{CreateTerminal, Terminals};
use spectask::config::ServeConfig;
use spectask::domain::{Priority, ProjectSettings, SandboxMode, TaskType, WorkSessionKind};
use spectask::store::{NewProject, NewSpecTask, NewWorkSession};

const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const SESSION_ROUNDS: usize = 21;
const COMMANDS: usize = 200;
/// Sessions per task: a plan task each, as a task of a small plan has.
const SESSIONS: usize = 10;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = ServeConfig::new("127.0.0.1:0", data.clone());
    config.database_url = Some(db.url().to_string());
    config
        .agent_profiles
        .insert("test".into(), AgentProfile::new(AGENT, &[]));
    config.default_agent = "test".into();
    let app = spectask::app::build(&config).await.unwrap();
    let store = app.store();
    let agents = app.agents();
    let mut projects = Vec::new();
    for mode in [SandboxMode::Off, SandboxMode::Required] {
        let settings = ProjectSettings {
            sandbox: mode,
            ..Default::default()
        };
        let project = store
            .create_project(
                NewProject {
                    name: format!("bench-{mode}"),
                    path: format!("/bench-{mode}"),
                    settings,
                },
                "bench",
            )
            .await
            .unwrap();
        projects.push((mode, project.id));
    }

    // 1. Session start, each round a new task (so a new agent process) per mode.
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let (mut off_first, mut on_first) = (Vec::new(), Vec::new());
    for round in 0..SESSION_ROUNDS {
        // Which mode goes first alternates: the one after pays for the first's
        // teardown.
        let order = if round % 2 == 0 {
            [projects[0], projects[1]]
        } else {
            [projects[1], projects[0]]
        };
        for (mode, project_id) in order {
            let task = store
                .create_spec_task(
                    NewSpecTask {
                        project_id,
                        title: format!("round {round}"),
                        description: String::new(),
                        prompt: "bench".into(),
                        priority: Priority::Medium,
                        task_type: TaskType::Feature,
                        max_parallel_sessions: None,
                        agent_profile: None,
                    },
                    "bench",
                )
                .await
                .unwrap();
            // A task's sessions share its agent process, where the sandbox is
            // applied: the first pays for the process, the others only for a thread.
            let mut sessions = Vec::new();
            for i in 0..SESSIONS {
                let ws = store
                    .create_work_session(
                        NewWorkSession {
                            spec_task_id: task.id,
                            parent_id: None,
                            implementation_task_id: None,
                            kind: WorkSessionKind::Implementation,
                            name: format!("s{i}"),
                            prompt: String::new(),
                        },
                        "bench",
                    )
                    .await
                    .unwrap()
                    .id;
                let wt = data.join(format!("tasks/{}/sessions/s{i}", task.id));
                std::fs::create_dir_all(&wt).unwrap();
                sessions.push((ws, wt));
            }
            let start = Instant::now();
            let rt = agents.runtime(task.id).await.unwrap();
            rt.start().await.unwrap();
            let mut first = None;
            for (ws, wt) in sessions {
                rt.open_thread(ws, wt).await.unwrap();
                rt.prompt(ws, "say hi").await.unwrap();
                first.get_or_insert(start.elapsed());
            }
            let all = start.elapsed();
            rt.stop().await.unwrap();
            match mode {
                SandboxMode::Off => {
                    off.push(all);
                    off_first.push(first.unwrap());
                }
                _ => {
                    on.push(all);
                    on_first.push(first.unwrap());
                }
            }
        }
    }
    let (off_first, on_first) = (median(off_first), median(on_first));
    println!(
        "agent process start + first session (thread + turn), median of {SESSION_ROUNDS}: \
         sandboxed {:.2} ms, unsandboxed {:.2} ms | ratio {:.3} (once per task)",
        ms(on_first),
        ms(off_first),
        on_first.as_secs_f64() / off_first.as_secs_f64()
    );
    let (off, on) = (median(off), median(on));
    println!(
        "session start ({SESSIONS} sessions of a task, its agent started for them), median of \
         {SESSION_ROUNDS}: sandboxed {:.2} ms, unsandboxed {:.2} ms | ratio {:.3} (goal: 1.05 or less)",
        ms(on),
        ms(off),
        on.as_secs_f64() / off.as_secs_f64()
    );

    // 2. A terminal command, through the terminals an agent asks for.
    let task_dir = data.join("tasks/terminal-bench");
    let built = Instant::now();
    let sandbox = Sandbox::build(&Policy {
        task_dir: task_dir.clone(),
        write: Vec::new(),
        hidden: vec![data.clone()],
    })
    .expect("a kernel with Landlock");
    println!(
        "building a sandbox: {:.2} ms ({} path rules)",
        ms(built.elapsed()),
        sandbox.rules
    );
    let terminals = Terminals::default();
    let (mut plain, mut confined) = (Vec::new(), Vec::new());
    for _ in 0..COMMANDS {
        for sb in [None, Some(sandbox.clone())] {
            let is_confined = sb.is_some();
            let start = Instant::now();
            let id = terminals
                .create(CreateTerminal {
                    session_id: "bench",
                    command: "true",
                    args: Vec::new(),
                    env: Vec::new(),
                    cwd: &task_dir,
                    output_limit: None,
                    sandbox: sb,
                })
                .await
                .unwrap();
            let exit = terminals.wait_for_exit("bench", &id).await.unwrap();
            assert_eq!(exit["exitCode"], 0, "{exit}");
            terminals.release("bench", &id).await;
            let took = start.elapsed();
            if is_confined {
                confined.push(took);
            } else {
                plain.push(took);
            }
        }
    }
    let (plain, confined) = (median(plain), median(confined));
    println!(
        "terminal command `true`, median of {COMMANDS}: sandboxed {:.3} ms, unsandboxed {:.3} ms \
         | added {:.3} ms per command (goal: 2 ms or less); ratio {:.2}",
        ms(confined),
        ms(plain),
        ms(confined.saturating_sub(plain)),
        confined.as_secs_f64() / plain.as_secs_f64()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
