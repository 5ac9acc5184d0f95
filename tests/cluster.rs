//! A cluster on PostgreSQL with real replicas: `spectask serve --cluster` binaries as
//! child processes, each with its own data dir, on one fresh database and one user
//! repository, running plans of the scripted agent. Every step of a plan runs
//! `sh pwd`, so a session's transcript says in whose data dir (on which replica)
//! each of its turns ran.

mod common;
#[path = "cluster/rig.rs"]
mod rig;
#[path = "runs/server.rs"]
#[allow(dead_code)]
mod server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::app::git;
use rig::{Rig, Task, all_events, finished, follow_until, leases_of};
use serde_json::{Value, json};
use server::Api;

/// Short leases, so takeovers happen within the test's patience.
const TTL_MS: u64 = 2000;

/// Every step's file is on the task branch, and every plan task was merged once.
fn assert_merged_once(rig: &Rig, n: usize, task: &Task) {
    let log = git(&rig.repo, &["log", "--format=%s", &task.branch]);
    for key in &task.keys {
        assert_eq!(
            git(
                &rig.repo,
                &["show", &format!("{}:p{n}-{key}.txt", task.branch)]
            ),
            format!("{n}-{key}")
        );
        let merges = log
            .lines()
            .filter(|l| l.contains(&format!("merge task {key} (session")))
            .count();
        assert_eq!(merges, 1, "task {} step {key} merged once:\n{log}", task.id);
    }
}

/// The data dirs (replica names) each session's turns ran in, in transcript order.
async fn turns_by_replica(api: &Api, task: i64, names: &[&str], rig: &Rig) -> Vec<Vec<String>> {
    let sessions = api
        .get(&format!("/spec-tasks/{task}/sessions"))
        .await
        .unwrap();
    let mut out = Vec::new();
    for s in sessions.as_array().unwrap() {
        let transcript = api
            .get(&format!("/sessions/{}/transcript", s["id"]))
            .await
            .unwrap();
        let mut ran = Vec::new();
        for entry in transcript.as_array().unwrap() {
            let text = entry.to_string();
            if !text.contains("sh: exit 0") {
                continue;
            }
            for name in names {
                let dir = rig.data(name).display().to_string();
                if text.contains(&format!("{dir}/tasks/")) {
                    ran.push(name.to_string());
                }
            }
        }
        out.push(ran);
    }
    out
}

fn process_children(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the comm may hold spaces, so read after its ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(parent) && stat.contains("spectask-test") {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_twenty_tasks_and_run_each_once() {
    let rig = Rig::new(TTL_MS).await;
    let a = rig.replica("a", 6).await;
    let b = rig.replica("b", 6).await;
    let project = rig.project(&a.api).await;
    let mut tasks = Vec::new();
    for n in 0..20 {
        // Submitted through both replicas: a person may use either.
        let api = if n % 2 == 0 { &a.api } else { &b.api };
        tasks.push(rig.submit(api, project, n, 50).await);
    }
    // Replica B's client sees every task finish, also those replica A runs.
    let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
    let events = follow_until(&b.api, |seen| ids.iter().all(|t| finished(seen, *t))).await;

    let mut owners: HashMap<String, usize> = HashMap::new();
    for (n, task) in tasks.iter().enumerate() {
        let leases = leases_of(&events, task.id);
        assert_eq!(
            leases.len(),
            1,
            "task {} was taken once: {leases:?}",
            task.id
        );
        let owner = leases[0]["data"]["replica"].as_str().unwrap().to_string();
        assert_eq!(leases[0]["data"]["fence"], 1);
        // Each session ran its turns on the owner only.
        for ran in turns_by_replica(&b.api, task.id, &["a", "b"], &rig).await {
            assert!(!ran.is_empty(), "task {}: a session without turns", task.id);
            assert!(
                ran.iter().all(|r| *r == owner),
                "task {} owned by {owner}: {ran:?}",
                task.id
            );
        }
        assert_merged_once(&rig, n, task);
        *owners.entry(owner).or_default() += 1;
    }
    assert!(
        owners.get("a").copied().unwrap_or(0) >= 5 && owners.get("b").copied().unwrap_or(0) >= 5,
        "the replicas share the work: {owners:?}"
    );
    println!("tasks per replica: {owners:?}");

    let status = a.api.get("/cluster").await.unwrap();
    assert_eq!(status["replica"], "a");
    let states: Vec<&str> = status["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["running", "running"], "{status}");
    // Finished tasks went back: nobody holds them, nothing waits for an owner.
    assert!(
        status["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tasks"].as_array().unwrap().is_empty()),
        "{status}"
    );
    assert_eq!(status["unowned"], json!([]));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_tasks_are_taken_over_and_finish_with_every_commit_once() {
    let rig = Rig::new(TTL_MS).await;
    let mut a = rig.replica("a", 4).await;
    let b = rig.replica("b", 4).await;
    let project = rig.project(&a.api).await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        tasks.push(rig.submit(&a.api, project, n, 600).await);
    }
    // Kill A once it holds tasks and one of its agents is in a turn.
    let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
    let before = follow_until(&b.api, |seen| {
        seen.iter().any(|e| {
            e["kind"] == "agent_thread.status_changed"
                && e["data"]["to"] == "prompting"
                && seen.iter().any(|l| {
                    l["kind"] == "spec_task.lease_taken"
                        && l["spec_task_id"] == e["spec_task_id"]
                        && l["data"]["replica"] == "a"
                })
        })
    })
    .await;
    let held_by_a: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|t| {
            leases_of(&before, *t)
                .last()
                .is_some_and(|l| l["data"]["replica"] == "a")
        })
        .collect();
    assert!(!held_by_a.is_empty());
    a.kill().await;
    let killed_at = chrono::Utc::now().timestamp_millis();

    let events = follow_until(&b.api, |seen| ids.iter().all(|t| finished(seen, *t))).await;
    let mut takeovers = Vec::new();
    let time_of = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    for t in &held_by_a {
        let Some(taken) = leases_of(&events, *t)
            .into_iter()
            .find(|l| l["data"]["from"] == "a")
        else {
            // It finished (and A handed it back) in the moment before the kill.
            let done = events
                .iter()
                .find(|e| {
                    e["spec_task_id"] == *t
                        && e["kind"] == "spec_task.status_changed"
                        && e["data"]["to"] == "implementation_review"
                })
                .unwrap();
            assert!(time_of(done) <= killed_at, "task {t} was not taken over");
            continue;
        };
        assert_eq!(taken["data"]["replica"], "b");
        let at = chrono::DateTime::parse_from_rfc3339(taken["created_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        takeovers.push(at - killed_at);
    }
    assert!(!takeovers.is_empty(), "B took over A's tasks");
    takeovers.sort();
    println!("takeover after SIGKILL (ms, per task): {takeovers:?}");
    assert!(
        *takeovers.last().unwrap() <= TTL_MS as i64 + 2000,
        "taken over within the lease + 2 s: {takeovers:?}"
    );
    for (n, task) in tasks.iter().enumerate() {
        assert_merged_once(&rig, n, task);
        // A session's turns ran on one replica, then (taken over) on the other:
        // never back.
        for ran in turns_by_replica(&b.api, task.id, &["a", "b"], &rig).await {
            let switches = ran.windows(2).filter(|w| w[0] != w[1]).count();
            assert!(switches <= 1, "task {}: {ran:?}", task.id);
            if switches == 1 {
                assert_eq!(ran[0], "a", "task {}: {ran:?}", task.id);
            }
        }
    }
    let status = b.api.get("/cluster").await.unwrap();
    let a_state = status["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "a")
        .unwrap()["state"]
        .clone();
    assert_eq!(a_state, "lost", "{status}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_past_its_lease_is_fenced_stops_its_agents_and_can_take_them_back() {
    let rig = Rig::new(TTL_MS).await;
    let a = rig.replica("a", 4).await;
    let project = rig.project(&a.api).await;
    // A takes every task (B is not there yet); each turn is long, so B is still in
    // its turns when it is killed below.
    let mut tasks = Vec::new();
    for n in [0, 4] {
        tasks.push(rig.submit(&a.api, project, n, 6000).await);
    }
    let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
    follow_until(&a.api, |seen| {
        ids.iter().all(|t| {
            seen.iter().any(|e| {
                e["spec_task_id"] == *t
                    && e["kind"] == "agent_thread.status_changed"
                    && e["data"]["to"] == "prompting"
            })
        })
    })
    .await;
    let mut b = rig.replica("b", 4).await;
    let pid = a.pid();
    assert!(!process_children(pid).is_empty(), "A runs the agents");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let taken = follow_until(&b.api, |seen| {
        ids.iter().all(|t| {
            leases_of(seen, *t)
                .iter()
                .any(|l| l["data"]["replica"] == "b" && l["data"]["from"] == "a")
        })
    })
    .await;
    let after_takeover = taken.last().unwrap()["id"].as_i64().unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };

    // A notices, stops the agents it no longer owns, and holds nothing.
    let started = Instant::now();
    loop {
        let metrics = reqwest::Client::new()
            .get(format!("{}/api/v1/metrics", a.api.url()))
            .bearer_auth(a.api.token())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("\nspectask_leases_held 0\n") && process_children(pid).is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "A still holds or runs agents:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(rig.data("a").join("server.log")).unwrap();
    assert!(
        log.contains("another replica took this task's lease"),
        "A saw the loss:\n{}",
        a.log()
    );
    assert!(
        log.contains("is run by another replica now"),
        "A's writes after the takeover were refused:\n{}",
        a.log()
    );

    // B dies in its turns: A takes the tasks back, into the worktrees it left
    // behind, which are older than what B published.
    let before_kill = all_events(&a.api).await;
    assert!(
        !ids.iter().any(|t| finished(&before_kill, *t)),
        "B is still running the tasks"
    );
    let killed_after = before_kill.last().unwrap()["id"].as_i64().unwrap();
    b.kill().await;
    let events = follow_until(&a.api, |seen| ids.iter().all(|t| finished(seen, *t))).await;
    for (task, n) in tasks.iter().zip([0, 4]) {
        assert_merged_once(&rig, n, task);
        // A's and B's turns were cut short (paused, killed); the turn that
        // finished each session ran in A's data dir, after the task came back.
        for ran in turns_by_replica(&a.api, task.id, &["a", "b"], &rig).await {
            assert_eq!(ran, ["a"], "task {}", task.id);
        }
    }
    // A took nothing back while B lived: its only leases after the takeover came
    // after B was killed.
    let early_a: Vec<&Value> = events
        .iter()
        .filter(|e| {
            let id = e["id"].as_i64().unwrap();
            id > after_takeover && id <= killed_after
        })
        .filter(|e| e["kind"] == "spec_task.lease_taken" && e["data"]["replica"] == "a")
        .collect();
    assert!(early_a.is_empty(), "A took nothing back: {early_a:?}");
    for t in &ids {
        let last = leases_of(&events, *t).last().unwrap()["data"].clone();
        assert_eq!(
            (last["replica"].as_str(), last["from"].as_str()),
            (Some("a"), Some("b")),
            "task {t}"
        );
    }
    a.stop().await;
}
