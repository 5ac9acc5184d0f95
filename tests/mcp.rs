//! Agent tools over MCP. The session token opens `/mcp` for its own session and
//! nothing else; the tools act inside the session's spec task; both transports (HTTP
//! and `spectask mcp` over stdio, the real binary) reach them.

mod common;

use std::process::Stdio;

use common::app::TestApp;
use common::plan::{
    approved_plan, commit_templates, drive, pending_permission, scripted_app, set_project,
    wait_for, wait_status,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spectask::auth::{generate_token, hash_token};
use spectask::domain::ids::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_spectask");

/// Task 1 waits on a permission request the test answers (so its session is
/// running while the test calls tools as it); task 2 has sub-items.
const PLAN: &str = "# Implementation Plan

- [ ] 1. Build the feature
  - ask Carry on?
  - write feature.txt feature
  - [ ] 1.1 Alpha
  - [ ] 1.2 Beta
- [ ] 2. Document it
  - write docs.txt docs
";

/// One JSON-RPC message POSTed to `/mcp`: the status and the answer.
async fn mcp(app: &TestApp, token: Option<&str>, message: Value) -> (StatusCode, Value) {
    let mut req = app
        .http
        .post(format!("{}/mcp", app.url))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&message);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Calls a tool over HTTP; `Ok(parsed result)` or `Err(tool error text)`.
async fn call(app: &TestApp, token: &str, tool: &str, args: Value) -> Result<Value, String> {
    let (status, body) = mcp(
        app,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["result"];
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    if result["isError"] == true {
        Err(text.to_string())
    } else {
        Ok(serde_json::from_str(text).unwrap_or_else(|_| json!(text)))
    }
}

/// A fresh token for a session, as a thread's opening issues one.
async fn token_for(app: &TestApp, session: i64) -> String {
    let token = generate_token();
    app.store
        .issue_session_token(WorkSessionId(session), &hash_token(&token), "http", "test")
        .await
        .unwrap();
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_token_opens_its_own_tools_and_nothing_else() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    set_project(
        &app,
        project,
        json!({ "permission_policy": "ask", "max_parallel_sessions": 1 }),
    )
    .await;
    let id = approved_plan(&app, project, "Tools", PLAN).await;
    let other = approved_plan(
        &app,
        project,
        "Another",
        "- [ ] 1. Other\n  - write o.txt o\n",
    )
    .await;
    let driver = drive(&app);
    let pending = pending_permission(&app, id).await;
    let session = pending["work_session_id"].as_i64().unwrap();
    let token = token_for(&app, session).await;

    // The handshake and the list of tools.
    let (status, init) = mcp(
        &app,
        Some(&token),
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "spectask");
    let (_, list) = mcp(
        &app,
        Some(&token),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "spectask_context",
            "spawn_session",
            "send_message",
            "read_inbox",
            "ack",
            "get_state",
            "set_state",
            "report_progress",
            "complete",
            "ask_person"
        ]
    );
    for tool in list["result"]["tools"].as_array().unwrap() {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(tool["description"].as_str().unwrap().len() > 40, "{tool}");
    }

    // Its context: its own task, the plan, its worktree.
    let context = call(&app, &token, "spectask_context", json!({}))
        .await
        .unwrap();
    assert_eq!(context["spec_task"]["id"], id);
    assert_eq!(context["session"]["id"], session);
    assert_eq!(context["task"]["key"], "1");
    let subs: Vec<&str> = context["task"]["sub_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["1.1", "1.2"]);
    assert_eq!(context["plan"].as_array().unwrap().len(), 2);
    assert!(
        context["session"]["worktree"]
            .as_str()
            .unwrap()
            .contains("/tasks/")
    );

    // Progress shows at once, before the session ends.
    let ticked = call(
        &app,
        &token,
        "report_progress",
        json!({"item": "1.1", "done": true}),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            ticked["sub_items_done"].as_u64(),
            ticked["sub_items_total"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let (_, progress) = app.get(&format!("/api/v1/spec-tasks/{id}/progress")).await;
    let first = &progress["tasks"][0];
    assert_eq!(first["sub_items_done"], 1, "{progress}");
    let err = call(
        &app,
        &token,
        "report_progress",
        json!({"item": "2", "done": true}),
    )
    .await
    .unwrap_err();
    assert!(err.contains("not a sub-item of your task 1"), "{err}");

    // Shared state: compare-and-set on the version; a stale write changes nothing.
    let set = call(
        &app,
        &token,
        "set_state",
        json!({"key": "api/shape", "value": {"v": 1}, "expected_version": 0}),
    )
    .await
    .unwrap();
    assert_eq!(set["version"], 1);
    let stale = call(
        &app,
        &token,
        "set_state",
        json!({"key": "api/shape", "value": {"v": 2}, "expected_version": 0}),
    )
    .await
    .unwrap_err();
    assert!(stale.contains("nothing was written"), "{stale}");
    let read = call(&app, &token, "get_state", json!({"key": "api/shape"}))
        .await
        .unwrap();
    assert_eq!(
        (read["value"].clone(), read["version"].clone()),
        (json!({"v": 1}), json!(1))
    );

    // Bad arguments and the spawn limit are tool errors that change nothing.
    let sessions_before = app
        .get(&format!("/api/v1/spec-tasks/{id}/sessions"))
        .await
        .1;
    let bad = call(&app, &token, "spawn_session", json!({"name": "x"}))
        .await
        .unwrap_err();
    assert!(
        bad.contains("invalid arguments") && bad.contains("prompt"),
        "{bad}"
    );
    let bad = call(
        &app,
        &token,
        "send_message",
        json!({"kind": "request", "to": "999999", "message": "hi"}),
    )
    .await
    .unwrap_err();
    assert!(bad.contains("not in this spec task"), "{bad}");
    let bad = call(&app, &token, "no_such_tool", json!({}))
        .await
        .unwrap_err();
    assert!(bad.contains("no tool"), "{bad}");
    set_project(&app, project, json!({ "max_spawned_sessions": 0 })).await;
    let limited = call(
        &app,
        &token,
        "spawn_session",
        json!({"name": "Helper", "prompt": "write h.txt h"}),
    )
    .await
    .unwrap_err();
    assert!(limited.contains("max_spawned_sessions = 0"), "{limited}");
    assert_eq!(
        app.get(&format!("/api/v1/spec-tasks/{id}/sessions"))
            .await
            .1,
        sessions_before
    );
    let plan = app
        .get(&format!("/api/v1/spec-tasks/{id}/implementation-tasks"))
        .await
        .1;
    assert_eq!(
        plan.as_array().unwrap().len(),
        2,
        "nothing was spawned: {plan}"
    );

    // Every call is in the session's transcript.
    let (_, transcript) = app
        .get(&format!("/api/v1/sessions/{session}/transcript"))
        .await;
    let recorded: Vec<&str> = transcript
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["source"] == "spectask")
        .map(|e| e["data"]["title"].as_str().unwrap())
        .collect();
    assert!(
        recorded.contains(&"spectask: spectask_context"),
        "{recorded:?}"
    );
    assert!(recorded.contains(&"spectask: set_state"), "{recorded:?}");

    // The token opens nothing of the REST API: not its own task, not another's, not
    // approving, tokens or permissions.
    for (method, path) in [
        (Method::GET, format!("/api/v1/spec-tasks/{id}")),
        (Method::GET, format!("/api/v1/spec-tasks/{other}")),
        (Method::POST, format!("/api/v1/spec-tasks/{other}/approve")),
        (Method::GET, "/api/v1/tokens".to_string()),
        (Method::POST, "/api/v1/tokens".to_string()),
        (Method::GET, "/api/v1/permissions".to_string()),
        (
            Method::POST,
            format!("/api/v1/permissions/{}/answer", pending["id"]),
        ),
    ] {
        let (status, _) = app
            .call_with(
                method.clone(),
                &path,
                Some(json!({"name": "x", "option_id": "allow"})),
                Some(&token),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // And `/mcp` opens to nothing but a session token.
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    assert_eq!(
        mcp(&app, None, ping.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mcp(&app, Some(&app.token), ping.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mcp(&app, Some("st_not-a-token"), ping.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Once the session ends, its token is refused.
    let (status, body) = app
        .post(
            &format!("/api/v1/permissions/{}/answer", pending["id"]),
            json!({"option_id": "allow"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_status(&app, id, "implementation_review").await;
    assert_eq!(
        mcp(&app, Some(&token), ping).await.0,
        StatusCode::UNAUTHORIZED
    );
    driver.abort();
    app.shutdown().await;
}

/// `spectask mcp` (the real binary) relays a session's tool calls over stdio, and
/// `ask_person` returns what a person answers through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stdio_bridge_relays_tool_calls_and_ask_person_waits_for_the_answer() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    set_project(&app, project, json!({ "permission_policy": "ask" })).await;
    let id = approved_plan(&app, project, "Bridge", PLAN).await;
    let driver = drive(&app);
    let pending = pending_permission(&app, id).await;
    let session = pending["work_session_id"].as_i64().unwrap();
    let token = token_for(&app, session).await;

    let mut child = tokio::process::Command::new(BIN)
        .arg("mcp")
        .env("SPECTASK_URL", &app.url)
        .env("SPECTASK_SESSION_TOKEN", &token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |message: Value| {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    };
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}))
    .await;
    let init: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "spectask", "{init}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    // The question waits; meanwhile another call is answered (they run side by side).
    send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ask_person",
        "arguments": {"question": "Which database?", "choices": ["sqlite", "postgres"]}}}),
    )
    .await;
    let question = wait_for(&app, "the question in the notifications", || async {
        let (_, list) = app.get("/api/v1/notifications").await;
        list.as_array()?
            .iter()
            .find(|n| n["kind"] == "request" && n["session_id"] == session)
            .cloned()
    })
    .await;
    send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "spectask_context", "arguments": {}}}))
    .await;
    let context: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(
        context["id"], 3,
        "the context comes before the answer: {context}"
    );
    let text: Value =
        serde_json::from_str(context["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["task"]["key"], "1");

    // A person answers: a choice that is not offered is refused, then one that is.
    let event = question["coordination_id"].as_i64().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/coordination/{event}/answer"),
            json!({"answer": "mysql"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/coordination/{event}/answer"),
            json!({"answer": "postgres"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let answered: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(answered["id"], 2);
    let text: Value =
        serde_json::from_str(answered["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        (text["answered"].clone(), text["answer"].clone()),
        (json!(true), json!("postgres"))
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/coordination/{event}/answer"),
            json!({"answer": "sqlite"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "answered once");

    // A revoked token: the bridge says so as a JSON-RPC error, and goes on.
    let newer = token_for(&app, session).await;
    assert_ne!(newer, token);
    send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})).await;
    let refused: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(refused["id"], 4);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{refused}"
    );

    drop(stdin);
    assert!(
        child.wait().await.unwrap().success(),
        "the bridge exits when stdin closes"
    );
    driver.abort();
    app.shutdown().await;
}
