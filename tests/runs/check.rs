//! One seed's run: set up, driven to its end with a person's actions and faults,
//! then the invariants.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use spectask::domain::ids::*;
use spectask::domain::tasks_md::{self, Mark};
use spectask::domain::{
    Capacity, ImplementationTaskEvent, ImplementationTaskStatus, Lifecycle, Phase, SpecTask,
    SpecTaskEvent, SpecTaskState, SpecTaskStatus, WorkSessionEvent, WorkSessionStatus, slugify,
};

use super::common::app::git;
use super::generate::{Act, Scenario, fill, generate, title};
use super::server::{Api, Server, configure};

/// Person actions after which the person only skips or cancels, so the run converges.
const PATIENCE: usize = 6;
/// How long the run may sit idle with nothing listed for a person before it counts
/// as stuck (the orchestrator reconciles every 3 s).
const STALL: Duration = Duration::from_secs(20);
const END_STATES: [&str; 4] = ["done", "implementation_review", "failed", "cancelled"];
const ACTIVE: [&str; 6] = [
    "pending",
    "running",
    "blocked",
    "verifying",
    "merging",
    "interrupted",
];
/// A conflict fixer that really resolves: it takes the task branch's side.
const RESOLVING_FIXER: &str =
    "run git checkout --theirs -- .\nrun git add -A\nsay resolved {{key}}\n";

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The longest a run may take before "the run did not end" is reported.
fn bound() -> Duration {
    Duration::from_secs(env_u64("SPECTASK_RUNS_BOUND_SECS").unwrap_or(120))
}

/// The largest plan a seed makes (`SPECTASK_RUNS_MAX_TASKS`, default 30).
pub fn max_tasks() -> usize {
    env_u64("SPECTASK_RUNS_MAX_TASKS").unwrap_or(30) as usize
}

/// What one run did, for the report of a failing seed.
#[derive(Default)]
struct Journal {
    actions: Vec<String>,
    /// Every agent pid seen (the agent endpoint), including ones a server restart
    /// orphaned.
    pids: BTreeSet<i64>,
    /// Refused 4xx answers to the person's actions (fine and expected).
    refused: usize,
}

/// Runs one seed; `Ok(end state)` or `Err(what broke, with the plan and the state)`.
pub async fn run_seed(seed: u64) -> Result<String, String> {
    let scenario = generate(seed, max_tasks());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    configure(&data);
    // The agent's own temporary folder (in its task's folder): outside the
    // worktrees, kept across attempts, and writable in the sandbox.
    let marks = "$TMPDIR".to_string();
    let spec = format!(
        "specs/{}",
        SpecTask::spec_dir_name(SpecTaskId(1), &slugify(&title(seed)))
    );
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main", "."]);
    for (path, content) in &scenario.base_files {
        std::fs::write(repo.join(path), content).unwrap();
    }
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    std::fs::write(repo.join(".spectask/implementation.md"), "{{details}}\n").unwrap();
    if scenario.resolving_fixer {
        std::fs::write(repo.join(".spectask/conflict.md"), RESOLVING_FIXER).unwrap();
    }
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial commit with templates"]);

    let described = format!(
        "{}plan:\n{}",
        scenario.describe(),
        fill(&scenario.tasks_md(), &spec, &marks)
    );
    let mut server = Server::start(&data).await?;
    let mut journal = Journal::default();
    let started = Instant::now();
    let outcome = match drive(&scenario, &mut server, &repo, &spec, &marks, &mut journal).await {
        Ok((id, end)) => invariants(
            &scenario,
            &server.api,
            &repo,
            &data,
            id,
            &end,
            &spec,
            &marks,
            &mut journal,
        )
        .await
        .map(|_| end),
        Err(e) => Err(e),
    };
    let outcome = outcome.map_err(|e| {
        format!(
            "{e}\n{described}\nactions (after {:.1} s, {} refused): {:#?}\nserver log (tail):\n{}",
            started.elapsed().as_secs_f64(),
            journal.refused,
            journal.actions,
            server.log()
        )
    });
    if outcome.is_ok() && std::env::var_os("SPECTASK_RUNS_VERBOSE").is_some() {
        eprintln!(
            "{described}actions (after {:.1} s, {} refused): {:#?}",
            started.elapsed().as_secs_f64(),
            journal.refused,
            journal.actions
        );
    }
    server.stop().await;
    outcome
}

/// Runs the scenario until the task reaches an end state; returns its id and state.
async fn drive(
    scenario: &Scenario,
    server: &mut Server,
    repo: &Path,
    spec: &str,
    marks: &str,
    journal: &mut Journal,
) -> Result<(i64, String), String> {
    let mut person = StdRng::seed_from_u64(scenario.person_seed);
    // Some settings at creation, the rest in a PATCH.
    let mut create = json!({ "path": repo });
    let mut patch = json!({});
    for (name, value) in scenario.settings.all() {
        if scenario.settings.at_create.contains(&name) {
            create[name] = value;
        } else {
            patch[name] = value;
        }
    }
    let project = server
        .api
        .ok(Method::POST, "/projects", Some(create))
        .await?;
    let pid = project["id"].as_i64().unwrap_or(0);
    server
        .api
        .ok(Method::PATCH, &format!("/projects/{pid}"), Some(patch))
        .await?;
    let task = server
        .api
        .ok(
            Method::POST,
            "/spec-tasks/import",
            Some(json!({
                "project_id": pid,
                "title": title(scenario.seed),
                "files": scenario.spec_files(spec, marks),
            })),
        )
        .await?;
    let id = task["id"].as_i64().unwrap();
    let imported = format!("specs/{}", task["spec_dir_name"].as_str().unwrap_or(""));
    if imported != spec {
        return Err(format!(
            "harness: the spec folder is {imported}, not the {spec} the plan names"
        ));
    }
    server
        .api
        .ok(
            Method::POST,
            &format!("/spec-tasks/{id}/approve"),
            Some(json!({})),
        )
        .await?;
    let started = Instant::now();
    let (mut after, mut seen, mut patience) = (0i64, 0usize, 0usize);
    let mut due = vec![false; scenario.timed.len()];
    let mut fired = vec![false; scenario.timed.len()];
    let mut idle_since: Option<Instant> = None;
    loop {
        let api = server.api.clone();
        if started.elapsed() > bound() {
            return Err(format!(
                "the run did not end within {} s\n{}",
                bound().as_secs(),
                state(&api, id).await
            ));
        }
        let status = api.get(&format!("/spec-tasks/{id}")).await?["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if status == "failed" && patience < PATIENCE && person.random_bool(0.5) {
            patience += 1;
            journal.actions.push("retry the failed spec task".into());
            act(
                &api,
                journal,
                Method::POST,
                &format!("/spec-tasks/{id}/retry"),
            )
            .await?;
            continue;
        }
        if END_STATES.contains(&status.as_str()) {
            return Ok((id, status));
        }
        let page = api
            .get(&format!(
                "/events?spec_task={id}&after={after}&wait=1&limit=1000"
            ))
            .await?;
        after = page["next_after"].as_i64().unwrap_or(after);
        // The moments that have come: a count of events, and for some a status
        // change to wait for after it.
        for e in page["items"].as_array().into_iter().flatten() {
            seen += 1;
            for (i, t) in scenario.timed.iter().enumerate() {
                if !fired[i] && !due[i] && t.after_events <= seen {
                    due[i] = t.on.is_none_or(|to| e["data"]["to"] == to);
                }
            }
        }
        for (i, t) in scenario.timed.iter().enumerate() {
            if due[i] && !fired[i] {
                fired[i] = true;
                perform(server, id, &t.act, journal).await?;
            }
        }
        let api = server.api.clone();
        let overview = api.get(&format!("/spec-tasks/{id}/overview")).await?;
        let needs = overview["needs_person"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let idle = overview["idle"] == true;
        // The person acts on what is listed when the run waits (`idle`), and also
        // when nothing happened for a second: a session held by a blocking message
        // does not count as idle, but waits for a person all the same.
        let quiet = page["items"].as_array().is_none_or(Vec::is_empty);
        if (idle || quiet)
            && let Some(need) = needs.first()
        {
            idle_since = None;
            if !idle {
                journal.actions.push(format!(
                    "(not idle, but quiet for 1 s; {} listed)",
                    needs.len()
                ));
            }
            answer(&api, id, need, &mut person, &mut patience, journal).await?;
        } else if idle && status == "implementing" {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > STALL {
                return Err(format!(
                    "the run did not end: idle for {} s with nothing for a person\n{}",
                    STALL.as_secs(),
                    state(&api, id).await
                ));
            }
        } else {
            idle_since = None;
        }
    }
}

/// A person's request: refused (4xx) is fine, 5xx is not (an `Err` from `call`).
async fn act(api: &Api, journal: &mut Journal, method: Method, path: &str) -> Result<(), String> {
    act_with(api, journal, method, path, json!({})).await
}

async fn act_with(
    api: &Api,
    journal: &mut Journal,
    method: Method,
    path: &str,
    body: Value,
) -> Result<(), String> {
    let (status, answer) = api.call(method, path, Some(body)).await?;
    if !status.is_success() {
        journal.refused += 1;
        if let Some(last) = journal.actions.last_mut() {
            last.push_str(&format!(
                " → {} {}",
                status.as_u16(),
                answer["error"]["code"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(())
}

/// What the person does about something listed for them.
async fn answer(
    api: &Api,
    id: i64,
    need: &Value,
    rng: &mut StdRng,
    patience: &mut usize,
    journal: &mut Journal,
) -> Result<(), String> {
    let session = need["session_id"].as_i64();
    let kind = need["kind"].as_str().unwrap_or("");
    *patience += 1;
    match (kind, session) {
        ("blocked", Some(s)) => {
            journal.actions.push(format!("unblock session {s}"));
            act_with(
                api,
                journal,
                Method::POST,
                &format!("/spec-tasks/{id}/coordination"),
                json!({ "kind": "unblocked", "to_session_id": s, "message": "go on" }),
            )
            .await?;
        }
        ("session_failed" | "conflict", Some(s)) => {
            let choice = if *patience > PATIENCE {
                if rng.random_bool(0.8) {
                    "skip"
                } else {
                    "cancel"
                }
            } else {
                ["retry", "retry", "skip", "cancel"][rng.random_range(0..4)]
            };
            // Sometimes through the plan task instead of the session.
            match need["task_key"].as_str() {
                Some(key) if choice != "retry" && rng.random_bool(0.3) => {
                    journal
                        .actions
                        .push(format!("{choice} task {key} ({kind} session {s})"));
                    act(
                        api,
                        journal,
                        Method::POST,
                        &format!("/spec-tasks/{id}/implementation-tasks/{key}/{choice}"),
                    )
                    .await?;
                }
                _ => {
                    journal
                        .actions
                        .push(format!("{choice} session {s} ({kind})"));
                    act(
                        api,
                        journal,
                        Method::POST,
                        &format!("/sessions/{s}/{choice}"),
                    )
                    .await?;
                }
            }
        }
        ("permission", _) => {
            let p = need["permission_id"].as_i64().unwrap_or(0);
            journal.actions.push(format!("allow permission {p}"));
            act_with(
                api,
                journal,
                Method::POST,
                &format!("/permissions/{p}/answer"),
                json!({ "option_id": "allow" }),
            )
            .await?;
        }
        ("review", _) => {}
        (other, _) => journal
            .actions
            .push(format!("(nothing to do about a {other} need: {need})")),
    }
    Ok(())
}

/// The `pick`-th of a list, by id order.
fn nth(list: &[Value], pick: u32) -> Option<&Value> {
    (!list.is_empty()).then(|| &list[pick as usize % list.len()])
}

/// Records the task's current agent pid, if it has one.
async fn note_pid(api: &Api, id: i64, journal: &mut Journal) -> Result<Option<i64>, String> {
    let (status, agent) = api
        .call(Method::GET, &format!("/spec-tasks/{id}/agent"), None)
        .await?;
    let pid = status.is_success().then(|| agent["pid"].as_i64()).flatten();
    if let Some(p) = pid {
        journal.pids.insert(p);
    }
    Ok(pid)
}

/// A scheduled person action or fault.
async fn perform(
    server: &mut Server,
    id: i64,
    what: &Act,
    journal: &mut Journal,
) -> Result<(), String> {
    let api = server.api.clone();
    let mut sessions = api
        .get(&format!("/spec-tasks/{id}/sessions"))
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default();
    sessions.sort_by_key(|s| s["id"].as_i64());
    match what {
        Act::Session { decision, pick } => {
            if let Some(s) = nth(&sessions, *pick) {
                let sid = &s["id"];
                journal.actions.push(format!(
                    "{decision} session {sid} ({}) unasked",
                    s["status"]
                ));
                act(
                    &api,
                    journal,
                    Method::POST,
                    &format!("/sessions/{sid}/{decision}"),
                )
                .await?;
            }
        }
        Act::Task { decision, pick } => {
            let plan = api
                .get(&format!("/spec-tasks/{id}/implementation-tasks"))
                .await?
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let Some(t) = nth(&plan, *pick) {
                let key = t["key"].as_str().unwrap_or("");
                journal
                    .actions
                    .push(format!("{decision} task {key} ({}) unasked", t["status"]));
                act(
                    &api,
                    journal,
                    Method::POST,
                    &format!("/spec-tasks/{id}/implementation-tasks/{key}/{decision}"),
                )
                .await?;
            }
        }
        Act::CancelAll => {
            journal.actions.push("cancel the spec task".into());
            act(
                &api,
                journal,
                Method::POST,
                &format!("/spec-tasks/{id}/cancel"),
            )
            .await?;
        }
        Act::Spawn {
            name,
            lines,
            depends_on,
        } => {
            journal
                .actions
                .push(format!("spawn {name:?} after {depends_on:?}"));
            act_with(
                &api,
                journal,
                Method::POST,
                &format!("/spec-tasks/{id}/sessions"),
                json!({ "name": name, "prompt": lines.join("\n"), "depends_on": depends_on }),
            )
            .await?;
        }
        Act::Message { kind, to, text } => {
            let to_session = to.and_then(|p| nth(&sessions, p)).map(|s| s["id"].clone());
            journal
                .actions
                .push(format!("post a {kind} message to {to_session:?}"));
            act_with(
                &api,
                journal,
                Method::POST,
                &format!("/spec-tasks/{id}/coordination"),
                json!({ "kind": kind, "to_session_id": to_session, "message": text }),
            )
            .await?;
        }
        Act::KillAgent => {
            if let Some(pid) = note_pid(&api, id, journal).await? {
                journal.actions.push(format!("kill -9 the agent {pid}"));
                // SAFETY: a signal to the agent process this run's server started.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
        Act::RestartServer => {
            note_pid(&api, id, journal).await?;
            journal
                .actions
                .push("SIGKILL the server and start it again".into());
            server.crash_and_restart().await?;
        }
    }
    Ok(())
}

async fn state(api: &Api, id: i64) -> String {
    let plan = api
        .get(&format!("/spec-tasks/{id}/implementation-tasks"))
        .await
        .unwrap_or_default();
    let plan: Vec<String> = plan
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{}={}",
                t["key"].as_str().unwrap_or(""),
                t["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    let sessions = api
        .get(&format!("/spec-tasks/{id}/sessions"))
        .await
        .unwrap_or_default();
    let sessions: Vec<String> = sessions
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} {} {} {} attempt {} reason {}",
                s["id"], s["name"], s["kind"], s["status"], s["attempt"], s["failure_reason"]
            )
        })
        .collect();
    let overview = api
        .get(&format!("/spec-tasks/{id}/overview"))
        .await
        .unwrap_or_default();
    let all = events(api, id).await.unwrap_or_default();
    // Every status change, one short line each, then the latest events in full.
    let changes: Vec<String> = all
        .iter()
        .filter(|e| {
            e["kind"].as_str().is_some_and(|k| {
                k.ends_with("status_changed") && !k.starts_with("agent_thread")
                    || k == "work_session.created"
                    || k == "work_session.merged"
                    || k == "coordination_event.posted"
            })
        })
        .map(|e| {
            let d = &e["data"];
            let what = e["kind"]
                .as_str()
                .unwrap_or("")
                .replace(".status_changed", "");
            match (d["from"].as_str(), d["to"].as_str()) {
                (Some(f), Some(t)) => format!(
                    "{} {what} {}{}: {f}→{t}{}",
                    e["id"],
                    e["entity_id"],
                    d["key"]
                        .as_str()
                        .map(|k| format!(" ({k})"))
                        .unwrap_or_default(),
                    d["reason"]
                        .as_str()
                        .map(|r| format!(" [{r}]"))
                        .unwrap_or_default()
                ),
                _ => format!("{} {what} {} {d}", e["id"], e["entity_id"]),
            }
        })
        .collect();
    let last: Vec<String> = all
        .iter()
        .rev()
        .take(15)
        .rev()
        .map(|e| format!("{} {} {} {}", e["id"], e["kind"], e["entity_id"], e["data"]))
        .collect();
    format!(
        "task: {}\nplan: {}\nsessions:\n  {}\nidle: {} needs_person: {}\nchanges:\n  {}\nlast events:\n  {}",
        overview["task"]["status"],
        plan.join(" "),
        sessions.join("\n  "),
        overview["idle"],
        overview["needs_person"],
        changes.join("\n  "),
        last.join("\n  ")
    )
}

/// Every event of the task, oldest first.
async fn events(api: &Api, id: i64) -> Result<Vec<Value>, String> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(&format!("/events?spec_task={id}&after={after}&limit=1000"))
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return Ok(all);
        }
        after = page["next_after"].as_i64().unwrap_or(after);
        all.extend(items);
    }
}

fn allowed<L: Lifecycle + Copy + PartialEq>(from: L, to: L, events: &[L::Event]) -> bool
where
    L::Event: Clone,
{
    events
        .iter()
        .any(|e| from.apply(e.clone()).is_ok_and(|next| next == to))
}

/// Whether some event of the spec task lifecycle takes `from` to `to` (whatever the
/// capacity the event carries, whatever phase a failed task failed in).
fn spec_task_allowed(from: SpecTaskStatus, to: SpecTaskStatus) -> bool {
    let states = match from {
        SpecTaskStatus::Failed => vec![
            SpecTaskState::from_parts(from, Some(Phase::Planning), None),
            SpecTaskState::from_parts(from, Some(Phase::Implementation), None),
        ],
        _ => vec![SpecTaskState::from_parts(from, None, None)],
    };
    let capacities = [false, true].into_iter().flat_map(|p| {
        [false, true].map(|i| Capacity {
            planning_full: p,
            implementation_full: i,
        })
    });
    let mut events = vec![
        SpecTaskEvent::SpecWritten,
        SpecTaskEvent::Reject,
        SpecTaskEvent::ImplementationFinished { review_gate: true },
        SpecTaskEvent::ImplementationFinished { review_gate: false },
        SpecTaskEvent::Fail {
            reason: String::new(),
        },
        SpecTaskEvent::Imported,
        SpecTaskEvent::Cancel,
    ];
    for c in capacities {
        events.extend([
            SpecTaskEvent::StartPlanning(c),
            SpecTaskEvent::Admit(c),
            SpecTaskEvent::Approve(c),
            SpecTaskEvent::RequestChanges(c),
            SpecTaskEvent::Retry(c),
        ]);
    }
    states.iter().any(|s| {
        events
            .iter()
            .any(|e| s.clone().apply(e.clone()).is_ok_and(|n| n.status() == to))
    })
}

/// Every status change is one its lifecycle allows, each entity's first change
/// starts from its initial status, and its changes chain.
pub fn check_events(log: &[Value], problems: &mut Vec<String>) {
    let mut last: HashMap<(String, i64), String> = HashMap::new();
    for e in log {
        let kind = e["kind"].as_str().unwrap_or("");
        let entity = match kind {
            "spec_task.status_changed" => "spec_task",
            "work_session.status_changed" => "work_session",
            "implementation_task.status_changed" => "implementation_task",
            _ => continue,
        };
        let (Some(from), Some(to)) = (e["data"]["from"].as_str(), e["data"]["to"].as_str()) else {
            problems.push(format!("event {} has no from/to: {}", e["id"], e["data"]));
            continue;
        };
        let key = (entity.to_string(), e["entity_id"].as_i64().unwrap_or(0));
        let initial = if entity == "spec_task" {
            "backlog"
        } else {
            "pending"
        };
        let prev = last.get(&key).map(String::as_str).unwrap_or(initial);
        if prev != from {
            problems.push(format!(
                "{entity} {}: event {} goes from {from}, but it was {prev}",
                key.1, e["id"]
            ));
        }
        last.insert(key.clone(), to.to_string());
        let ok = match entity {
            "work_session" => match (from.parse::<WorkSessionStatus>(), to.parse()) {
                (Ok(f), Ok(t)) => allowed(f, t, WorkSessionEvent::ALL),
                _ => false,
            },
            "implementation_task" => match (from.parse::<ImplementationTaskStatus>(), to.parse()) {
                (Ok(f), Ok(t)) => allowed(f, t, ImplementationTaskEvent::ALL),
                _ => false,
            },
            _ => match (from.parse::<SpecTaskStatus>(), to.parse()) {
                (Ok(f), Ok(t)) => spec_task_allowed(f, t),
                _ => false,
            },
        };
        if !ok {
            problems.push(format!(
                "{entity} {}: {from} → {to} (event {}) is not allowed by its lifecycle",
                key.1, e["id"]
            ));
        }
    }
}

/// Waits until the last events are in: no new event for a second (at most 10 s).
async fn settle(api: &Api, id: i64) -> Result<(), String> {
    let mut after = events(api, id)
        .await?
        .last()
        .and_then(|e| e["id"].as_i64())
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let page = api
            .get(&format!(
                "/events?spec_task={id}&after={after}&wait=1&limit=1000"
            ))
            .await?;
        let next = page["next_after"].as_i64().unwrap_or(after);
        if next == after {
            return Ok(());
        }
        after = next;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn invariants(
    scenario: &Scenario,
    api: &Api,
    repo: &Path,
    data: &Path,
    id: i64,
    end: &str,
    spec: &str,
    marks: &str,
    journal: &mut Journal,
) -> Result<(), String> {
    settle(api, id).await?;
    let task = api.get(&format!("/spec-tasks/{id}")).await?;
    let branch = task["branch"].as_str().unwrap_or("").to_string();
    let mut problems = Vec::new();
    if task["status"] != end {
        problems.push(format!(
            "the run ended {end} but the task is now {}",
            task["status"]
        ));
    }

    // The event log.
    let log = events(api, id).await?;
    check_events(&log, &mut problems);

    // The plan tasks carry the plan's sub-items as their details.
    let plan = api
        .get(&format!("/spec-tasks/{id}/implementation-tasks"))
        .await?;
    let plan = plan.as_array().cloned().unwrap_or_default();
    for t in &scenario.tasks {
        let want = fill(&t.lines.join("\n"), spec, marks);
        match plan.iter().find(|p| p["key"] == t.key.as_str()) {
            Some(p) if p["details"] == want.as_str() => {}
            Some(p) => problems.push(format!(
                "harness: task {}'s details are {}, not the plan's {want:?}",
                t.key, p["details"]
            )),
            None if end == "cancelled" && plan.is_empty() => {}
            None => problems.push(format!("task {} of the plan is not a plan task", t.key)),
        }
    }

    // Merges: each recorded one is in the task branch, each session merged once.
    let report = api.get(&format!("/spec-tasks/{id}/report")).await?;
    let subjects = read_git(repo, &["log", "--format=%s", &branch]);
    let sessions = api.get(&format!("/spec-tasks/{id}/sessions")).await?;
    let sessions = sessions.as_array().cloned().unwrap_or_default();
    let merge_of: HashMap<i64, Option<String>> = report["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["id"].as_i64().unwrap_or(0),
                s["merge_commit"].as_str().map(String::from),
            )
        })
        .collect();
    for s in &sessions {
        let sid = s["id"].as_i64().unwrap_or(0);
        let merges = subjects
            .lines()
            .filter(|l| l.contains(": merge task ") && l.ends_with(&format!("(session {sid})")))
            .count();
        match merge_of.get(&sid).cloned().flatten() {
            Some(commit) => {
                let ancestor = std::process::Command::new("git")
                    .arg("-C")
                    .arg(repo)
                    .args(["merge-base", "--is-ancestor", &commit, &branch])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if !ancestor {
                    problems.push(format!("session {sid}'s merge {commit} is not in {branch}"));
                }
                let parents = read_git(repo, &["rev-list", "--parents", "-n1", &commit]);
                let is_merge = parents.split_whitespace().count() == 3;
                if merges != usize::from(is_merge) {
                    problems.push(format!(
                        "session {sid} ({}) is merged {merges} times (recorded {commit}, a merge: {is_merge})",
                        s["status"]
                    ));
                }
                if s["status"] != "completed" {
                    problems.push(format!(
                        "session {sid} has a recorded merge but is {}",
                        s["status"]
                    ));
                }
            }
            None if merges > 0 => problems.push(format!(
                "session {sid} ({}) was merged {merges} times but no merge is recorded",
                s["status"]
            )),
            None => {}
        }
    }

    // tasks.md: ticked exactly where the plan task is done.
    let tasks_md = read_git(repo, &["show", &format!("{branch}:{spec}/tasks.md")]);
    let doc = tasks_md::parse(&tasks_md);
    for item in doc.top_level() {
        let status = plan
            .iter()
            .find(|t| t["key"] == item.key.as_str())
            .and_then(|t| t["status"].as_str())
            .unwrap_or("");
        if (item.mark == Mark::Done) != (status == "done") {
            problems.push(format!(
                "tasks.md marks task {} {:?}, but it is {status}",
                item.key, item.mark
            ));
        }
    }

    // One history file per completed session, and none for the others.
    let history = read_git(
        repo,
        &[
            "ls-tree",
            "--name-only",
            &format!("{branch}:{spec}/history"),
        ],
    );
    for s in &sessions {
        if s["kind"] == "merge_conflict" {
            continue;
        }
        let completed = s["status"] == "completed";
        let key = plan
            .iter()
            .find(|t| t["id"] == s["implementation_task_id"])
            .and_then(|t| t["key"].as_str())
            .unwrap_or("");
        let file = format!("session-{}-{}.md", s["id"], slugify(key));
        if completed != history.lines().any(|l| l == file) {
            problems.push(format!(
                "session {} is {} and its history {file} {}",
                s["id"],
                s["status"],
                if completed { "is missing" } else { "exists" }
            ));
        }
    }

    // Nothing left running.
    if matches!(end, "done" | "implementation_review") {
        for s in &sessions {
            if ACTIVE.contains(&s["status"].as_str().unwrap_or("")) {
                problems.push(format!(
                    "session {} is still {} after the run ended {end}",
                    s["id"], s["status"]
                ));
            }
        }
        for t in &plan {
            if matches!(
                t["status"].as_str(),
                Some("pending" | "in_progress" | "blocked")
            ) {
                problems.push(format!(
                    "task {} is still {} after the run ended {end}",
                    t["key"], t["status"]
                ));
            }
        }
    }
    note_pid(api, id, journal).await?;
    if let Some(agent) = agent_left(api, id).await? {
        problems.push(format!(
            "the agent is still {agent} after the run ended {end}"
        ));
    }
    for pid in alive(&journal.pids).await {
        problems.push(format!(
            "agent process {pid} is still alive after the run ended {end}"
        ));
    }

    // No worktree left behind but ones with uncommitted work (a run that ended
    // with its plan done; a cancelled or failed run keeps its worktrees).
    let sessions_dir = data.join("tasks").join(id.to_string()).join("sessions");
    for entry in std::fs::read_dir(&sessions_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        let owner = sessions
            .iter()
            .filter(|s| {
                s["worktree_path"]
                    .as_str()
                    .is_some_and(|w| Path::new(w) == path)
            })
            .max_by_key(|s| s["id"].as_i64());
        let dirty = !read_git(&path, &["status", "--porcelain"])
            .trim()
            .is_empty();
        if dirty {
            continue;
        }
        let owner_status = owner.map_or("none".to_string(), |s| s["status"].to_string());
        if owner.is_none_or(|s| s["status"] == "completed") {
            problems.push(format!(
                "the worktree {} (session {owner_status}) is left behind with nothing uncommitted",
                path.display()
            ));
        } else if matches!(end, "done" | "implementation_review") {
            journal.actions.push(format!(
                "(note: clean worktree {} of a {owner_status} session stays)",
                path.display()
            ));
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{}", problems.join("\n"), state(api, id).await))
    }
}

/// The task's agent status if it is still up (starting or ready) a while after the
/// run ended; it stops right after the task's last status change.
async fn agent_left(api: &Api, id: i64) -> Result<Option<String>, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = 0;
    loop {
        let (status, agent) = api
            .call(Method::GET, &format!("/spec-tasks/{id}/agent"), None)
            .await?;
        let now = agent["status"].as_str().unwrap_or("").to_string();
        // `null`: the task never got an instance (cancelled before its agent started).
        if status == reqwest::StatusCode::NOT_FOUND
            || agent.is_null()
            || matches!(now.as_str(), "stopped" | "crashed")
        {
            return Ok(None);
        }
        if Instant::now() > deadline {
            return Ok(Some(now));
        }
        let page = api
            .get(&format!(
                "/events?spec_task={id}&after={after}&wait=1&limit=1000"
            ))
            .await?;
        after = page["next_after"].as_i64().unwrap_or(after);
    }
}

/// The pids still alive (not zombies) after a grace period: an orphaned agent
/// exits within a second of its stdin closing.
async fn alive(pids: &BTreeSet<i64>) -> Vec<i64> {
    let is_alive = |pid: i64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with(|c| c != 'Z' && c != 'X'))
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<i64> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        // No event says a process is gone: poll /proc, briefly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Git's output, or empty when it fails (a file the branch does not have).
fn read_git(dir: &Path, args: &[&str]) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
