//! The HTTP API, end to end: a real server on port 0 with a fresh database per test,
//! called over real HTTP. Each test runs on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use common::app::{TestApp, git_init, spawn_app};
use common::db::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spectask::domain::SpecTaskEvent;
use spectask::domain::ids::*;

on_both_backends!(
    every_route_requires_a_valid_token,
    projects,
    spec_task_crud_and_pagination,
    illegal_transitions_change_nothing,
    lifecycle_through_review_and_wip_queue,
    sessions_coordination_and_shared_state,
    events_by_cursor,
    tokens,
    malformed_and_oversized_requests,
    concurrent_approvals_over_http,
    openapi_lists_every_route,
    what_schemathesis_found,
);

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn events_of(app: &TestApp, task: i64) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/events?spec_task={task}&limit=1000"))
        .await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().unwrap().clone()
}

async fn status_of(app: &TestApp, task: i64) -> String {
    let (_, body) = app.get(&format!("/api/v1/spec-tasks/{task}")).await;
    body["status"].as_str().unwrap().to_string()
}

/// Moves a task to `spec_review` the way the planning machinery will: through the
/// same transition function, as the system actor.
async fn spec_written(app: &TestApp, task: i64) {
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{task}/start-planning"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    common::spec::record_version(app, task, common::spec::DESIGN).await;
}

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/projects"),
    ("GET", "/api/v1/metrics"),
    ("POST", "/api/v1/projects"),
    ("GET", "/api/v1/projects/1"),
    ("PATCH", "/api/v1/projects/1"),
    ("GET", "/api/v1/spec-tasks"),
    ("POST", "/api/v1/spec-tasks"),
    ("GET", "/api/v1/spec-tasks/1"),
    ("PATCH", "/api/v1/spec-tasks/1"),
    ("POST", "/api/v1/spec-tasks/1/start-planning"),
    ("POST", "/api/v1/spec-tasks/1/approve"),
    ("POST", "/api/v1/spec-tasks/1/request-changes"),
    ("POST", "/api/v1/spec-tasks/1/reject"),
    ("POST", "/api/v1/spec-tasks/1/cancel"),
    ("POST", "/api/v1/spec-tasks/1/retry"),
    ("GET", "/api/v1/spec-tasks/1/sessions"),
    ("GET", "/api/v1/sessions/1"),
    ("GET", "/api/v1/spec-tasks/1/coordination"),
    ("POST", "/api/v1/spec-tasks/1/coordination"),
    ("POST", "/api/v1/spec-tasks/1/coordination/1/ack"),
    ("GET", "/api/v1/spec-tasks/1/state"),
    ("GET", "/api/v1/spec-tasks/1/state/k"),
    ("PUT", "/api/v1/spec-tasks/1/state/k"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens/1/revoke"),
    ("GET", "/api/v1/spec-tasks/1/agent"),
    ("POST", "/api/v1/spec-tasks/1/agent/stop"),
    ("POST", "/api/v1/spec-tasks/1/agent/restart"),
    ("GET", "/api/v1/spec-tasks/1/threads"),
    ("GET", "/api/v1/sessions/1/thread"),
    ("GET", "/api/v1/sessions/1/transcript"),
    ("GET", "/api/v1/permissions"),
    ("POST", "/api/v1/permissions/1/answer"),
    ("GET", "/api/v1/spec-tasks/1/progress"),
    ("GET", "/api/v1/spec-tasks/1/overview"),
    ("GET", "/api/v1/spec-tasks/1/report"),
    ("POST", "/api/v1/sessions/1/retry"),
    ("GET", "/api/v1/notifications"),
    ("GET", "/api/v1/sessions/1/changes"),
    ("GET", "/api/v1/spec-tasks/1/agent/samples"),
    ("POST", "/api/v1/agents/stop-all"),
    ("GET", "/api/v1/webhooks"),
    ("POST", "/api/v1/webhooks"),
    ("DELETE", "/api/v1/webhooks/1"),
    ("GET", "/api/v1/webhooks/1/deliveries"),
    ("GET", "/api/v1/openapi.json"),
];

async fn every_route_requires_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let task = app.task(project, "something").await;
    assert_eq!(task, 1);
    let before = events_of(&app, task).await.len();
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for token in [None, Some("wrong"), Some("st_0000")] {
            let (status, body) = app
                .call_with(method.clone(), path, Some(json!({"name": "x"})), token)
                .await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    // Nothing a refused request carried was applied.
    assert_eq!(events_of(&app, task).await.len(), before);
    assert_eq!(status_of(&app, task).await, "backlog");
    let resp = app
        .http
        .get(format!("{}/api/v1/projects", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let health = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    app.shutdown().await;
}

async fn projects(backend: Backend) {
    let app = spawn_app(backend).await;
    let repo = tempfile::tempdir().unwrap();
    git_init(repo.path());
    std::fs::create_dir(repo.path().join("sub")).unwrap();
    // Any folder inside the repository registers its root.
    let (status, created) = app
        .post(
            "/api/v1/projects",
            json!({ "path": repo.path().join("sub"), "planning_wip_limit": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let root = repo.path().canonicalize().unwrap();
    assert_eq!(created["path"], root.to_str().unwrap());
    assert_eq!(created["base_branch"], "main");
    assert_eq!(created["spec_folder"], "specs");
    assert_eq!(created["planning_wip_limit"], 2);
    let id = created["id"].as_i64().unwrap();

    let (status, body) = app
        .post("/api/v1/projects", json!({ "path": repo.path() }))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let plain = tempfile::tempdir().unwrap();
    let (status, body) = app
        .post("/api/v1/projects", json!({ "path": plain.path() }))
        .await;
    // It names a repository that is not there: 404, as an unknown id is.
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a git repository")
    );
    for (path, expected, code) in [
        (
            "relative/path",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        ("/does/not/exist", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let (status, body) = app.post("/api/v1/projects", json!({ "path": path })).await;
        assert_error(status, &body, expected, code);
    }
    let (status, body) = app
        .post(
            "/api/v1/projects",
            json!({ "path": plain.path(), "bogus": 1 }),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    let (status, list) = app.get("/api/v1/projects").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, got) = app.get(&format!("/api/v1/projects/{id}")).await;
    assert_eq!((status, &got), (StatusCode::OK, &created));
    let (status, body) = app.get("/api/v1/projects/999").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.get("/api/v1/projects/abc").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");

    let patch = json!({ "base_branch": "develop", "verification_command": "cargo test",
                        "planning_wip_limit": null, "max_parallel_sessions": 5, "name": "renamed" });
    let (status, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{id}"),
            Some(patch),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["base_branch"], "develop");
    assert_eq!(patched["verification_command"], "cargo test");
    assert_eq!(patched["planning_wip_limit"], Value::Null);
    assert_eq!(patched["max_parallel_sessions"], 5);
    assert_eq!(patched["name"], "renamed");
    for bad in [
        json!({ "spec_folder": "../escape" }),
        json!({ "base_branch": "no spaces allowed" }),
        json!({ "implementation_wip_limit": 0 }),
        json!({ "name": "  " }),
        json!({ "status": "done" }),
    ] {
        let (status, body) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/projects/{id}"),
                Some(bad.clone()),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (_, after) = app.get(&format!("/api/v1/projects/{id}")).await;
    assert_eq!(after, patched, "refused patches changed nothing");
    let (status, body) = app
        .call(
            Method::PATCH,
            "/api/v1/projects/999",
            Some(json!({ "name": "x" })),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    app.shutdown().await;
}

async fn spec_task_crud_and_pagination(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app
        .post("/api/v1/spec-tasks", json!({ "prompt": "x" }))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no project")
    );

    let p1 = app.project().await;
    // With one project, naming it is optional; the title defaults to the prompt's first line.
    let (status, t) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": "Add login\n\nwith OAuth and GitHub", "priority": "high", "type": "bugfix" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["title"], "Add login");
    assert_eq!(t["status"], "backlog");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["task_type"], "bugfix");
    assert_eq!(t["branch"], format!("spectask/{}-add-login", t["id"]));
    let p2 = app.project().await;
    let (status, body) = app
        .post("/api/v1/spec-tasks", json!({ "prompt": "x" }))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    for bad in [
        json!({ "prompt": "   ", "project_id": p1 }),
        json!({ "prompt": "x", "project_id": p1, "priority": "urgent!" }),
        json!({ "prompt": "x", "project_id": p1, "type": "chore" }),
        json!({ "prompt": "x", "project_id": p1, "title": "t".repeat(201) }),
        json!({ "prompt": "x", "project_id": p1, "status": "done" }),
        json!({ "prompt": "x", "project_id": p1, "max_parallel_sessions": 0 }),
        json!({ "title": "no prompt", "project_id": p1 }),
    ] {
        let (status, body) = app.post("/api/v1/spec-tasks", bad.clone()).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": "x", "project_id": 999 }),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let mut ids = vec![t["id"].as_i64().unwrap()];
    for i in 0..6 {
        ids.push(
            app.task(if i % 2 == 0 { p2 } else { p1 }, &format!("task {i}"))
                .await,
        );
    }
    // Newest first, five a page, the cursor walks to the end.
    let (status, page1) = app.get("/api/v1/spec-tasks?limit=5").await;
    assert_eq!(status, StatusCode::OK);
    let got: Vec<i64> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(got, newest_first[..5]);
    let cursor = page1["next_cursor"].as_i64().unwrap();
    let (_, page2) = app
        .get(&format!("/api/v1/spec-tasks?limit=5&cursor={cursor}"))
        .await;
    let got2: Vec<i64> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got2, newest_first[5..]);
    assert_eq!(page2["next_cursor"], Value::Null);
    let (_, by_project) = app.get(&format!("/api/v1/spec-tasks?project={p2}")).await;
    assert_eq!(by_project["items"].as_array().unwrap().len(), 3);
    app.post(
        &format!("/api/v1/spec-tasks/{}/start-planning", ids[1]),
        json!({}),
    )
    .await;
    let (_, planning) = app.get("/api/v1/spec-tasks?status=planning").await;
    let planning = planning["items"].as_array().unwrap();
    assert_eq!(planning.len(), 1);
    assert_eq!(planning[0]["id"], ids[1]);
    for bad in ["status=flying", "limit=0", "limit=201", "project=abc"] {
        let (status, body) = app.get(&format!("/api/v1/spec-tasks?{bad}")).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }

    let id = ids[0];
    let (status, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/spec-tasks/{id}"),
            Some(json!({ "title": "Add login (OAuth)", "description": "details", "priority": "low" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["title"], "Add login (OAuth)");
    assert_eq!(patched["description"], "details");
    assert_eq!(patched["priority"], "low");
    assert_eq!(patched["branch"], t["branch"], "the branch never moves");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/spec-tasks/{id}"),
            Some(json!({ "status": "done" })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(status_of(&app, id).await, "backlog");
    let (status, body) = app
        .call(
            Method::PATCH,
            "/api/v1/spec-tasks/999",
            Some(json!({ "title": "x" })),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.get("/api/v1/spec-tasks/999").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    app.shutdown().await;
}

async fn illegal_transitions_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let task = app.task(project, "refuse me").await;
    let (_, before_body) = app.get(&format!("/api/v1/spec-tasks/{task}")).await;
    let before_events = events_of(&app, task).await;
    for action in ["approve", "request-changes", "reject", "retry"] {
        let (status, body) = app
            .post(&format!("/api/v1/spec-tasks/{task}/{action}"), json!({}))
            .await;
        assert_error(status, &body, StatusCode::CONFLICT, "illegal_transition");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("backlog"),
            "{body}"
        );
    }
    let (_, after_body) = app.get(&format!("/api/v1/spec-tasks/{task}")).await;
    assert_eq!(
        after_body, before_body,
        "status and updated_at are unchanged"
    );
    assert_eq!(
        events_of(&app, task).await,
        before_events,
        "no event was written"
    );

    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{task}/fly"), json!({}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.post("/api/v1/spec-tasks/999/approve", json!({})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{task}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    for action in ["start-planning", "cancel", "retry", "approve"] {
        let (status, body) = app
            .post(&format!("/api/v1/spec-tasks/{task}/{action}"), json!({}))
            .await;
        assert_error(status, &body, StatusCode::CONFLICT, "illegal_transition");
    }
    assert_eq!(status_of(&app, task).await, "cancelled");
    app.shutdown().await;
}

async fn lifecycle_through_review_and_wip_queue(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "planning_wip_limit": 1, "implementation_wip_limit": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let a = app.task(project, "first").await;
    let b = app.task(project, "second").await;

    // Planning WIP: b waits in planning_queued and is admitted when a leaves planning.
    spec_written(&app, a).await;
    let (_, body) = app
        .post(&format!("/api/v1/spec-tasks/{b}/start-planning"), json!({}))
        .await;
    assert_eq!(body["status"], "planning");
    let c = app.task(project, "third").await;
    let (_, body) = app
        .post(&format!("/api/v1/spec-tasks/{c}/start-planning"), json!({}))
        .await;
    assert_eq!(body["status"], "planning_queued");
    let (_, body) = app
        .post(&format!("/api/v1/spec-tasks/{b}/cancel"), json!({}))
        .await;
    assert_eq!(body["status"], "cancelled");
    assert_eq!(
        status_of(&app, c).await,
        "planning",
        "c was admitted when b left planning"
    );

    // Review: request changes sends a back to planning (queued: c holds the one slot).
    let (_, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{a}/request-changes"),
            json!({}),
        )
        .await;
    assert_eq!(body["status"], "planning_queued");
    app.store
        .transition_spec_task(
            SpecTaskId(c),
            &|_| SpecTaskEvent::Fail {
                reason: "no spec written".into(),
            },
            "system",
        )
        .await
        .unwrap();
    let (_, failed) = app.get(&format!("/api/v1/spec-tasks/{c}")).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failed_phase"], "planning");
    assert_eq!(failed["failure_reason"], "no spec written");
    assert_eq!(status_of(&app, a).await, "planning");
    common::spec::record_version(&app, a, "# Design, revised\n").await;
    let (_, body) = app
        .post(&format!("/api/v1/spec-tasks/{a}/approve"), json!({}))
        .await;
    assert_eq!(body["status"], "implementing");
    let (_, body) = app
        .post(&format!("/api/v1/spec-tasks/{c}/retry"), json!({}))
        .await;
    assert_eq!(body["status"], "planning");

    // A spec rejected is archived.
    let d = app.task(project, "fourth").await;
    common::spec::record_version(&app, c, common::spec::DESIGN).await;
    spec_written(&app, d).await;
    let (_, body) = app
        .post(&format!("/api/v1/spec-tasks/{d}/reject"), json!({}))
        .await;
    assert_eq!(body["status"], "rejected");
    // Implementation WIP: c is approved while a implements, so it queues.
    let (_, body) = app
        .post(&format!("/api/v1/spec-tasks/{c}/approve"), json!({}))
        .await;
    assert_eq!(body["status"], "implementation_queued");

    let kinds: Vec<(String, String)> = events_of(&app, c)
        .await
        .iter()
        .filter(|e| e["kind"] == "spec_task.status_changed")
        .map(|e| {
            (
                e["data"]["to"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    let to: Vec<&str> = kinds.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        to,
        [
            "planning_queued",
            "planning",
            "failed",
            "planning",
            "spec_review",
            "implementation_queued"
        ]
    );
    assert_eq!(kinds[1].1, "system", "the admission was the system's doing");
    assert!(kinds[0].1.starts_with("token:"));
    app.shutdown().await;
}

async fn sessions_coordination_and_shared_state(backend: Backend) {
    use spectask::domain::WorkSessionKind;
    use spectask::store::NewWorkSession;
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let task = app.task(project, "coordinate").await;
    let other = app.task(project, "elsewhere").await;
    let (status, list) = app
        .get(&format!("/api/v1/spec-tasks/{task}/sessions"))
        .await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let session = |spec_task_id, name: &str, parent_id| NewWorkSession {
        spec_task_id,
        parent_id,
        implementation_task_id: None,
        kind: WorkSessionKind::Implementation,
        name: name.into(),
        prompt: "p".into(),
    };
    let s1 = app
        .store
        .create_work_session(session(SpecTaskId(task), "one", None), "system")
        .await
        .unwrap();
    let s2 = app
        .store
        .create_work_session(session(SpecTaskId(task), "two", Some(s1.id)), "system")
        .await
        .unwrap();
    let foreign = app
        .store
        .create_work_session(session(SpecTaskId(other), "x", None), "system")
        .await
        .unwrap();
    let (_, list) = app
        .get(&format!("/api/v1/spec-tasks/{task}/sessions"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["parent_id"], s1.id.0);
    let (status, got) = app.get(&format!("/api/v1/sessions/{}", s2.id)).await;
    assert_eq!(
        (status, got["name"].as_str()),
        (StatusCode::OK, Some("two"))
    );
    assert_eq!(got["status"], "pending");
    assert!(
        got.get("lease_owner").is_none(),
        "the dead lease columns are gone"
    );
    let (status, body) = app.get("/api/v1/sessions/999").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.get("/api/v1/spec-tasks/999/sessions").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Coordination events.
    let path = format!("/api/v1/spec-tasks/{task}/coordination");
    let (status, posted) = app
        .post(
            &path,
            json!({ "kind": "handoff", "from_session_id": s1.id, "to_session_id": s2.id,
                             "message": "schema is ready", "payload": { "table": "users" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["acknowledged_at"], Value::Null);
    let (status, broadcast) = app
        .post(
            &path,
            json!({ "kind": "broadcast", "message": "rebase on main" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{broadcast}");
    for bad in [
        json!({ "kind": "gossip", "message": "x" }),
        json!({ "kind": "request", "message": "" }),
        json!({ "kind": "broadcast", "message": "x", "to_session_id": s1.id }),
    ] {
        let (status, body) = app.post(&path, bad.clone()).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    // Sessions that are not the task's are not found there.
    for bad in [
        json!({ "kind": "request", "message": "x", "to_session_id": foreign.id }),
        json!({ "kind": "request", "message": "x", "from_session_id": 999 }),
    ] {
        let (status, body) = app.post(&path, bad.clone()).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, body) = app
        .post(
            "/api/v1/spec-tasks/999/coordination",
            json!({ "kind": "request", "message": "x" }),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let ack = format!("{path}/{}/ack", posted["id"]);
    // Addressed to another session: a conflict with the event, nothing changed.
    let (status, body) = app.post(&ack, json!({ "by_session_id": s1.id })).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, acked) = app.post(&ack, json!({ "by_session_id": s2.id })).await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["acknowledged_by"], s2.id.0);
    let (status, body) = app.post(&ack, json!({})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    // A person acknowledges with no body at all.
    let resp = app
        .http
        .post(format!("{}{path}/{}/ack", app.url, broadcast["id"]))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = app.post(&format!("{path}/999/ack"), json!({})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, listed) = app.get(&path).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| !e["acknowledged_at"].is_null()));
    assert_eq!(listed[0]["payload"], json!({ "table": "users" }));

    // Shared state with compare-and-set.
    let key = format!("/api/v1/spec-tasks/{task}/state/api.contract");
    let put = |value: Value, v: i64| json!({ "value": value, "expected_version": v });
    let (status, v1) = app
        .call(Method::PUT, &key, Some(put(json!({ "path": "/login" }), 0)))
        .await;
    assert_eq!(
        (status, v1["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{v1}"
    );
    let (status, v2) = app
        .call(
            Method::PUT,
            &key,
            Some(put(json!({ "path": "/v2/login" }), 1)),
        )
        .await;
    assert_eq!((status, v2["version"].as_i64()), (StatusCode::OK, Some(2)));
    let events_before = events_of(&app, task).await.len();
    for stale in [0, 1, 7] {
        let (status, body) = app
            .call(Method::PUT, &key, Some(put(json!("lost write"), stale)))
            .await;
        assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    }
    let (_, current) = app.get(&key).await;
    assert_eq!(current["value"], json!({ "path": "/v2/login" }));
    assert_eq!(current["version"], 2);
    assert_eq!(events_of(&app, task).await.len(), events_before);
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/spec-tasks/{task}/state/bad%20key"),
            Some(put(json!(1), 0)),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .call(Method::PUT, &key, Some(json!({ "value": 1 })))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .get(&format!("/api/v1/spec-tasks/{task}/state/missing"))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/spec-tasks/999/state/k",
            Some(put(json!(1), 0)),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, all) = app.get(&format!("/api/v1/spec-tasks/{task}/state")).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    app.shutdown().await;
}

async fn events_by_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let a = app.task(project, "a").await;
    let b = app.task(project, "b").await;
    app.post(&format!("/api/v1/spec-tasks/{a}/start-planning"), json!({}))
        .await;
    let (status, all) = app.get("/api/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    let items = all["items"].as_array().unwrap();
    // admin token, project, two tasks, one transition.
    let kinds: Vec<&str> = items.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "token.created",
            "project.created",
            "spec_task.created",
            "spec_task.created",
            "spec_task.status_changed"
        ]
    );
    let ids: Vec<i64> = items.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all["next_after"], ids[4]);
    let (_, page) = app
        .get(&format!("/api/v1/events?after={}&limit=2", ids[1]))
        .await;
    let got: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids[2..4]);
    assert_eq!(page["next_after"], ids[3]);
    let (_, end) = app.get(&format!("/api/v1/events?after={}", ids[4])).await;
    assert_eq!(end["items"], json!([]));
    assert_eq!(end["next_after"], ids[4]);
    let (_, only_b) = app.get(&format!("/api/v1/events?spec_task={b}")).await;
    let only_b = only_b["items"].as_array().unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0]["spec_task_id"], b);
    // A long poll answers as soon as the next event is committed.
    let url = format!("{}/api/v1/events?after={}&wait=20", app.url, ids[4]);
    let request = app.http.get(url).bearer_auth(&app.token).send();
    let (response, created) = tokio::join!(request, app.task(project, "late"));
    let page: Value = response.unwrap().json().await.unwrap();
    assert_eq!(page["items"][0]["kind"], "spec_task.created", "{page}");
    assert_eq!(page["items"][0]["entity_id"], created);
    for bad in ["after=-1", "limit=0", "limit=1001", "after=x", "wait=31"] {
        let (status, body) = app.get(&format!("/api/v1/events?{bad}")).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    app.shutdown().await;
}

async fn tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, created) = app.post("/api/v1/tokens", json!({ "name": "ci" })).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("st_"));
    let (status, _) = app
        .call_with(Method::GET, "/api/v1/projects", None, Some(&secret))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = app.get("/api/v1/tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&secret),
        "a token is never listed"
    );
    let (_, events) = app.get("/api/v1/events").await;
    assert!(
        !events.to_string().contains(&secret),
        "a token is never recorded"
    );
    let on_disk = std::fs::read_to_string(app.data_dir.join("spectask.db")).unwrap_or_default();
    assert!(!on_disk.contains(&secret));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.data_dir.join("token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (status, body) = app.post("/api/v1/tokens", json!({ "name": "" })).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let id = created["id"].as_i64().unwrap();
    let (status, revoked) = app
        .post(&format!("/api/v1/tokens/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!revoked["revoked_at"].is_null());
    let (status, body) = app
        .call_with(Method::GET, "/api/v1/projects", None, Some(&secret))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app
        .post(&format!("/api/v1/tokens/{id}/revoke"), json!({}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app.post("/api/v1/tokens/999/revoke", json!({})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    app.shutdown().await;
}

async fn malformed_and_oversized_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let before = app.get("/api/v1/spec-tasks").await.1;
    let huge = "x".repeat(1024 * 1024 + 1);
    let (status, body) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": huge, "project_id": project }),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Just under the limit is accepted.
    let big = "y".repeat(1024 * 1000);
    let (status, _) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": big, "project_id": project }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let send_raw = |content_type: &'static str, body: &'static str| {
        app.http
            .post(format!("{}/api/v1/spec-tasks", app.url))
            .bearer_auth(&app.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let resp = send_raw("application/json", "{\"prompt\": ").await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let resp = send_raw("text/plain", "prompt=x").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let resp = send_raw("application/json", "[1, 2]").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // NUL cannot be stored by PostgreSQL: refused as input on every backend, never a 500.
    let (status, body) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": "a\u{0}b", "project_id": project }),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "name": "x\u{0}" })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = app.get("/api/v1/no-such-thing").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, after) = app.get("/api/v1/spec-tasks").await;
    assert_eq!(
        after["items"].as_array().unwrap().len(),
        before["items"].as_array().unwrap().len() + 1
    );
    app.shutdown().await;
}

/// Two people approve the same spec at the same moment: exactly one wins.
async fn concurrent_approvals_over_http(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let task = app.task(project, "race").await;
    spec_written(&app, task).await;
    let before = events_of(&app, task).await.len();
    let path = format!("/api/v1/spec-tasks/{task}/approve");
    let (r1, r2) = tokio::join!(app.post(&path, json!({})), app.post(&path, json!({})));
    let mut statuses = [r1.0, r2.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{r1:?} {r2:?}"
    );
    let loser = if r1.0 == StatusCode::CONFLICT {
        r1.1
    } else {
        r2.1
    };
    assert_eq!(loser["error"]["code"], "illegal_transition");
    assert_eq!(status_of(&app, task).await, "implementing");
    // The winner's status change and its review verdict; nothing from the loser.
    let new: Vec<String> = events_of(&app, task).await[before..]
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(new, ["spec_task.status_changed", "review.recorded"]);
    app.shutdown().await;
}

async fn openapi_lists_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ROUTES.iter().filter(|(_, p)| !p.ends_with("openapi.json")) {
        let templated = path
            .replace("/projects/1", "/projects/{id}")
            .replace("/spec-tasks/1", "/spec-tasks/{id}")
            .replace("/sessions/1", "/sessions/{id}")
            .replace("/tokens/1", "/tokens/{id}")
            .replace("/permissions/1", "/permissions/{id}")
            .replace("/webhooks/1", "/webhooks/{id}")
            .replace("/coordination/1", "/coordination/{event_id}")
            .replace("/state/k", "/state/{key}");
        let templated = match templated.rsplit_once('/') {
            Some((base, action))
                if base.ends_with("{id}")
                    && [
                        "start-planning",
                        "approve",
                        "request-changes",
                        "reject",
                        "cancel",
                        "retry",
                    ]
                    .contains(&action) =>
            {
                if base.starts_with("/api/v1/sessions/") {
                    format!("{base}/{{decision}}")
                } else {
                    format!("{base}/{{action}}")
                }
            }
            _ => templated,
        };
        let item = paths
            .get(&templated)
            .unwrap_or_else(|| panic!("{templated} missing from {:?}", paths.keys()));
        assert!(
            item.get(method.to_lowercase()).is_some(),
            "{method} {templated}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The document `spectask openapi` prints, with every reference resolved and the
    // credential check's 401 on every secured operation.
    assert_eq!(doc, spectask::api::openapi());
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let name = reference.split('"').next().unwrap();
        let pointer = name.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "{name} does not resolve");
    }
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id),
                "{method} {path}: operationId {id} twice"
            );
            let open = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r == &json!({})));
            if !open {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path}: no 401"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: no {status}"
                    );
                }
            }
        }
    }
    app.shutdown().await;
}

/// Regressions for what schemathesis found (tests/schemathesis.rs): each request is
/// one the document calls valid (or invalid), answered as it says.
async fn what_schemathesis_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let task = app.task(project, "Add a login page").await;
    let tasks_before = app.get("/api/v1/spec-tasks").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    // Importing into a project whose base branch is gone was a 500, and left a task.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "base_branch": "gone" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let import = json!({ "files": { "tasks.md": "" }, "title": "Imported", "project_id": project });
    let (status, body) = app.post("/api/v1/spec-tasks/import", import.clone()).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let tasks_after = app.get("/api/v1/spec-tasks").await.1["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(tasks_after, tasks_before, "a refused import leaves no task");
    app.call(
        Method::PATCH,
        &format!("/api/v1/projects/{project}"),
        Some(json!({ "base_branch": "main" })),
    )
    .await;
    let (status, body) = app.post("/api/v1/spec-tasks/import", import).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A spec folder inside .git was accepted, and every import then failed.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "spec_folder": "a/.git" })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // JSON Schema's integers include 2.0.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "planning_wip_limit": 2.0, "max_attempts": 3e0 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["planning_wip_limit"].as_i64(),
            body["max_attempts"].as_i64()
        ),
        (Some(2), Some(3))
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(json!({ "max_attempts": 2.5 })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // A session that does not exist (or is not the task's) is 404, not 422.
    let coordination = format!("/api/v1/spec-tasks/{task}/coordination");
    let (status, body) = app
        .post(
            &coordination,
            json!({ "kind": "notification", "message": "hi", "to_session_id": 999 }),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    // NUL is kept inside free JSON (stored escaped), refused in text fields.
    let (status, posted) = app
        .post(
            &coordination,
            json!({ "kind": "notification", "message": "hi", "payload": { "k\u{0}": "a\u{0}b" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["payload"], json!({ "k\u{0}": "a\u{0}b" }));
    let (status, body) = app
        .post(
            &coordination,
            json!({ "kind": "notification", "message": "a\u{0}" }),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("message:"),
        "{body}"
    );
    // Text that merely spells a backslash and u0000 is text, not NUL.
    let (status, body) = app
        .post(
            &coordination,
            json!({ "kind": "notification", "message": "see \\u0000" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // An acknowledgement's body may be JSON null: a person acknowledges.
    let resp = app
        .http
        .post(format!(
            "{}/api/v1/spec-tasks/{task}/coordination/{}/ack",
            app.url, posted["id"]
        ))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // With several projects and none named, creating a task is a conflict with the
    // server's state, not an invalid request; so is an unknown agent profile a 404.
    app.project().await;
    let (status, body) = app
        .post("/api/v1/spec-tasks", json!({ "prompt": "x" }))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "prompt": "x", "project_id": project, "agent_profile": "nope" }),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    // NUL in a path parameter never reaches the database (PostgreSQL cannot compare
    // text holding it): 400 on both backends.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/v1/spec-tasks/{task}/implementation-tasks/a%00b/skip"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/spec-tasks/{task}/state/a%00b"),
            Some(json!({ "value": 1, "expected_version": 0 })),
        ),
    ] {
        let (status, body) = app.call(method, &path, body).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
    // A title's 200 characters count what was sent, as the schema's maxLength does.
    let (status, body) = app
        .post("/api/v1/spec-tasks", json!({ "prompt": "x", "project_id": project, "title": format!("{} ", "t".repeat(200)) }))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    app.shutdown().await;
}
