//! One seed's run: set up, driven to its end with a person's actions and faults,
//! then the invariants.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use spectask::domain::tasks_md::{self, Mark};
use spectask::domain::{
    ImplementationTaskEvent, ImplementationTaskStatus, Lifecycle, WorkSessionEvent,
    WorkSessionStatus, slugify,
};

use super::common::app::{git, git_init};
use super::generate::{OLD_FILES, Scenario, spec_files};
use super::server::{Api, Server, configure};

/// The longest a run may take before "the run did not end" is reported.
const BOUND: Duration = Duration::from_secs(150);
/// Person actions after which the person only skips or cancels, so the run converges.
const PATIENCE: usize = 4;
const END_STATES: [&str; 4] = ["done", "implementation_review", "failed", "cancelled"];
const ACTIVE: [&str; 6] = [
    "pending",
    "running",
    "blocked",
    "verifying",
    "merging",
    "interrupted",
];

pub async fn run_seed(seed: u64) -> Result<String, String> {
    let scenario = Scenario::new(seed);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    configure(&data);
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git_init(&repo);
    for f in 0..OLD_FILES {
        std::fs::write(repo.join(format!("old-{f}.txt")), "old\n").unwrap();
    }
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    std::fs::write(repo.join(".spectask/implementation.md"), "{{details}}\n").unwrap();
    git(&repo, &["add", "."]);
    git(
        &repo,
        &["commit", "-qm", "files and the implementation template"],
    );

    let mut server = Server::start(&data).await?;
    let described = format!(
        "settings: {}\nmeddling {}, faults {} (rate {})\nplan:\n{}",
        scenario.settings,
        scenario.meddling,
        scenario.max_faults,
        scenario.fault_rate,
        scenario.tasks_md()
    );
    let mut actions = Vec::new();
    let outcome = match drive(&scenario, &mut server, &repo, &mut actions).await {
        Ok((id, end)) => invariants(&server.api, &repo, &data, id, &end)
            .await
            .map(|_| end),
        Err(e) => Err(e),
    };
    let outcome = outcome.map_err(|e| {
        format!(
            "{e}\n{described}\nactions: {actions:?}\nserver log (tail):\n{}",
            server.log()
        )
    });
    server.stop().await;
    outcome
}

/// Runs the scenario until the task reaches an end state; returns its id and state.
async fn drive(
    scenario: &Scenario,
    server: &mut Server,
    repo: &Path,
    actions: &mut Vec<String>,
) -> Result<(i64, String), String> {
    let mut rng = StdRng::seed_from_u64(scenario.seed ^ 0x5eed_5eed);
    let mut settings = scenario.settings.clone();
    settings["path"] = json!(repo);
    let project = server
        .api
        .ok(Method::POST, "/projects", Some(settings))
        .await?;
    let task = server
        .api
        .ok(
            Method::POST,
            "/spec-tasks/import",
            Some(json!({
                "project_id": project["id"],
                "title": format!("Seed {}", scenario.seed),
                "files": spec_files(scenario),
            })),
        )
        .await?;
    let id = task["id"].as_i64().unwrap();
    server
        .api
        .ok(
            Method::POST,
            &format!("/spec-tasks/{id}/approve"),
            Some(json!({})),
        )
        .await?;
    let started = Instant::now();
    let (mut after, mut faults, mut patience) = (0i64, 0usize, 0usize);
    loop {
        let api = server.api.clone();
        if started.elapsed() > BOUND {
            return Err(format!(
                "the run did not end within {} s\n{}",
                BOUND.as_secs(),
                state(&api, id).await
            ));
        }
        let status = api.get(&format!("/spec-tasks/{id}")).await?["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if status == "failed" && patience < PATIENCE && rng.random_bool(0.5) {
            patience += 1;
            actions.push("retry the task".into());
            api.call(
                Method::POST,
                &format!("/spec-tasks/{id}/retry"),
                Some(json!({})),
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
        if faults < scenario.max_faults && rng.random_bool(scenario.fault_rate) {
            faults += 1;
            if rng.random_bool(0.5) {
                let agent = api
                    .call(Method::GET, &format!("/spec-tasks/{id}/agent"), None)
                    .await?
                    .1;
                if let Some(pid) = agent["pid"].as_i64() {
                    actions.push(format!("kill the agent {pid}"));
                    // SAFETY: a signal to the agent process this run started.
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                }
            } else {
                actions.push("SIGKILL the server and restart it".into());
                server.crash_and_restart().await?;
                continue;
            }
        }
        if rng.random_bool(scenario.meddling) {
            meddle(&api, id, &mut rng, actions).await?;
        }
        let overview = api.get(&format!("/spec-tasks/{id}/overview")).await?;
        let needs = overview["needs_person"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if overview["idle"] == true
            && let Some(need) = needs.first()
        {
            answer(&api, id, need, &mut rng, &mut patience, actions).await?;
        }
    }
}

/// What the person does about something listed for them.
async fn answer(
    api: &Api,
    id: i64,
    need: &Value,
    rng: &mut StdRng,
    patience: &mut usize,
    actions: &mut Vec<String>,
) -> Result<(), String> {
    let session = need["session_id"].as_i64();
    let kind = need["kind"].as_str().unwrap_or("");
    *patience += 1;
    match (kind, session) {
        ("blocked", Some(s)) => {
            actions.push(format!("unblock session {s}"));
            api.call(
                Method::POST,
                &format!("/spec-tasks/{id}/coordination"),
                Some(json!({ "kind": "unblocked", "to_session_id": s, "message": "go on" })),
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
            actions.push(format!("{choice} session {s} ({kind})"));
            api.call(
                Method::POST,
                &format!("/sessions/{s}/{choice}"),
                Some(json!({})),
            )
            .await?;
        }
        ("permission", _) => {
            let p = need["permission_id"].as_i64().unwrap_or(0);
            actions.push(format!("allow permission {p}"));
            api.call(
                Method::POST,
                &format!("/permissions/{p}/answer"),
                Some(json!({ "option_id": "allow" })),
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Something a person does unasked, at a random moment.
async fn meddle(
    api: &Api,
    id: i64,
    rng: &mut StdRng,
    actions: &mut Vec<String>,
) -> Result<(), String> {
    let sessions = api.get(&format!("/spec-tasks/{id}/sessions")).await?;
    let sessions = sessions.as_array().cloned().unwrap_or_default();
    let pick = |rng: &mut StdRng| -> Option<i64> {
        if sessions.is_empty() {
            return None;
        }
        sessions[rng.random_range(0..sessions.len())]["id"].as_i64()
    };
    match rng.random_range(0..100) {
        0..=24 => {
            let n = rng.random_range(1..1000);
            actions.push(format!("spawn session {n}"));
            api.call(
                Method::POST,
                &format!("/spec-tasks/{id}/sessions"),
                Some(json!({ "name": format!("spawned {n}"), "prompt": format!("write spawned-{n}.txt s") })),
            )
            .await?;
        }
        25..=44 => {
            actions.push("broadcast".into());
            api.call(
                Method::POST,
                &format!("/spec-tasks/{id}/coordination"),
                Some(json!({ "kind": "broadcast", "message": "a note for everyone" })),
            )
            .await?;
        }
        45..=59 => {
            if let Some(s) = pick(rng) {
                actions.push(format!("block session {s}"));
                api.call(
                    Method::POST,
                    &format!("/spec-tasks/{id}/coordination"),
                    Some(json!({ "kind": "blocking", "to_session_id": s, "message": "hold on" })),
                )
                .await?;
            }
        }
        60..=96 => {
            if let Some(s) = pick(rng) {
                let choice = ["retry", "skip", "cancel"][rng.random_range(0..3)];
                actions.push(format!("{choice} session {s} unasked"));
                api.call(
                    Method::POST,
                    &format!("/sessions/{s}/{choice}"),
                    Some(json!({})),
                )
                .await?;
            }
        }
        _ => {
            actions.push("cancel the task".into());
            api.call(
                Method::POST,
                &format!("/spec-tasks/{id}/cancel"),
                Some(json!({})),
            )
            .await?;
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
                "{} {} {} {}",
                s["id"], s["name"], s["status"], s["failure_reason"]
            )
        })
        .collect();
    let overview = api
        .get(&format!("/spec-tasks/{id}/overview"))
        .await
        .unwrap_or_default();
    format!(
        "plan: {}\nsessions:\n  {}\nidle: {} needs_person: {}",
        plan.join(" "),
        sessions.join("\n  "),
        overview["idle"],
        overview["needs_person"]
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

async fn invariants(api: &Api, repo: &Path, data: &Path, id: i64, end: &str) -> Result<(), String> {
    let task = api.get(&format!("/spec-tasks/{id}")).await?;
    let branch = task["branch"].as_str().unwrap_or("").to_string();
    let spec = format!("specs/{}", task["spec_dir_name"].as_str().unwrap_or(""));
    let mut problems = Vec::new();

    // The event log: every status change is one its lifecycle allows, and each
    // entity's changes chain.
    let log = events(api, id).await?;
    let mut last: HashMap<(String, i64), String> = HashMap::new();
    for e in &log {
        let kind = e["kind"].as_str().unwrap_or("");
        if !kind.ends_with(".status_changed") || kind.starts_with("agent") {
            continue;
        }
        let (Some(from), Some(to)) = (e["data"]["from"].as_str(), e["data"]["to"].as_str()) else {
            continue;
        };
        let entity = e["entity"].as_str().unwrap_or("").to_string();
        let key = (entity.clone(), e["entity_id"].as_i64().unwrap_or(0));
        if let Some(prev) = last.get(&key)
            && prev != from
        {
            problems.push(format!(
                "{entity} {}: went {prev} → then from {from}",
                key.1
            ));
        }
        last.insert(key.clone(), to.to_string());
        let ok = match entity.as_str() {
            "work_session" => match (from.parse::<WorkSessionStatus>(), to.parse()) {
                (Ok(f), Ok(t)) => allowed(f, t, WorkSessionEvent::ALL),
                _ => false,
            },
            "implementation_task" => match (from.parse::<ImplementationTaskStatus>(), to.parse()) {
                (Ok(f), Ok(t)) => allowed(f, t, ImplementationTaskEvent::ALL),
                _ => false,
            },
            _ => true,
        };
        if !ok {
            problems.push(format!("{entity} {}: {from} → {to} is not allowed", key.1));
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
        let recorded = merge_of.get(&sid).cloned().flatten();
        match &recorded {
            Some(commit) => {
                let ancestor = std::process::Command::new("git")
                    .arg("-C")
                    .arg(repo)
                    .args(["merge-base", "--is-ancestor", commit, &branch])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if !ancestor {
                    problems.push(format!("session {sid}'s merge {commit} is not in {branch}"));
                }
                let parents = read_git(repo, &["rev-list", "--parents", "-n1", commit]);
                let is_merge = parents.split_whitespace().count() == 3;
                if merges != usize::from(is_merge) {
                    problems.push(format!(
                        "session {sid} is merged {merges} times (recorded {commit})"
                    ));
                }
            }
            None if merges > 0 => problems.push(format!(
                "session {sid} was merged {merges} times but no merge is recorded"
            )),
            None => {}
        }
    }

    // tasks.md: ticked exactly where the plan task is done.
    let plan = api
        .get(&format!("/spec-tasks/{id}/implementation-tasks"))
        .await?;
    let plan = plan.as_array().cloned().unwrap_or_default();
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

    // One history file per completed session.
    let history = read_git(
        repo,
        &[
            "ls-tree",
            "--name-only",
            &format!("{branch}:{spec}/history"),
        ],
    );
    for s in &sessions {
        let completed = s["status"] == "completed" && s["kind"] != "merge_conflict";
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
    if end != "failed" {
        for s in &sessions {
            if ACTIVE.contains(&s["status"].as_str().unwrap_or("")) {
                problems.push(format!(
                    "session {} is still {} after the run ended {end}",
                    s["id"], s["status"]
                ));
            }
        }
    }
    if !agent_stopped(api, id).await? {
        problems.push(format!(
            "the agent is still running after the run ended {end}"
        ));
    }

    // No worktree left behind but ones with uncommitted work.
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
        let done = owner.is_some_and(|s| s["status"] == "completed");
        let dirty = !read_git(&path, &["status", "--porcelain"])
            .trim()
            .is_empty();
        if done && !dirty {
            problems.push(format!(
                "the worktree {} of a completed session is left behind",
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

/// Whether the task's agent is stopped (or never ran), waiting on its events for a
/// little while: it stops right after the task's last status change.
async fn agent_stopped(api: &Api, id: i64) -> Result<bool, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut after = 0;
    loop {
        let (status, agent) = api
            .call(Method::GET, &format!("/spec-tasks/{id}/agent"), None)
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND
            || matches!(
                agent["status"].as_str(),
                Some("stopped" | "crashed" | "failed")
            )
        {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        let page = api
            .get(&format!(
                "/events?spec_task={id}&after={after}&wait=1&limit=1000"
            ))
            .await?;
        after = page["next_after"].as_i64().unwrap_or(after);
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
