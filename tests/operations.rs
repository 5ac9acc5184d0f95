//! Running spectask as a service: `/api/v1/metrics` (read with a real Prometheus
//! text-format parser), `/readyz` (healthy, and with its database gone), the
//! `x-request-id` header, and the request log line of the real binary. The tests
//! that read the store run on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::app::{TestApp, spawn_app, spawn_app_with};
use common::db::{Backend, pg_admin_url};
use reqwest::StatusCode;
use serde_json::{Value, json};
use spectask::domain::ids::*;
use spectask::domain::{AgentInstanceEvent, WorkSessionEvent, WorkSessionKind};
use spectask::store::{InstanceReport, NewWorkSession};

on_both_backends!(
    metrics_need_a_credential_and_move,
    sessions_and_agents_in_the_figures,
    readyz_reports_the_database_and_the_loops,
);

/// A scrape as the Prometheus client's parser read it.
struct Scrape {
    families: Vec<Value>,
}

impl Scrape {
    /// The sum of the samples named `name` whose labels include all of `labels`
    /// (0 if none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples()
            .filter(|s| s["name"] == name)
            .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
            .map(|s| s["value"].as_f64().expect("a finite value"))
            .sum::<f64>()
            // An empty sum is -0.0; a missing series reads as 0.
            + 0.0
    }

    fn samples(&self) -> impl Iterator<Item = &Value> {
        self.families
            .iter()
            .flat_map(|f| f["samples"].as_array().unwrap())
    }

    fn family(&self, name: &str) -> &Value {
        self.families
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }
}

/// Parses the exposition format with the official Prometheus client's parser
/// (`scripts/install-prometheus-client`; `scripts/test` runs it).
fn parse(text: &str) -> Scrape {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/prometheus-client/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-prometheus-client (scripts/test does it)",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("tests/operations/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Scrape {
        families: serde_json::from_slice(&out.stdout).unwrap(),
    }
}

/// Scrapes `/api/v1/metrics` with the app's token and parses it.
async fn scrape(app: &TestApp) -> Scrape {
    let resp = app
        .http
        .get(format!("{}/api/v1/metrics", app.url))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let scrape = parse(&resp.text().await.unwrap());
    // Each family with its type and help (the parser drops a counter's `_total`).
    for (name, kind) in [
        ("spectask_http_requests", "counter"),
        ("spectask_http_request_duration_seconds", "histogram"),
        ("spectask_spec_tasks", "gauge"),
        ("spectask_work_sessions", "gauge"),
        ("spectask_merge_queue_depth", "gauge"),
        ("spectask_agent_instances", "gauge"),
        ("spectask_agent_processes_running", "gauge"),
        ("spectask_agent_cpu_percent", "gauge"),
        ("spectask_agent_memory_bytes", "gauge"),
        ("spectask_websocket_clients", "gauge"),
        ("spectask_last_event_id", "gauge"),
        ("spectask_event_lag_events", "gauge"),
        ("spectask_loop_up", "gauge"),
    ] {
        let family = scrape.family(name);
        assert_eq!(family["type"], kind, "{name}");
        assert!(!family["help"].as_str().unwrap().is_empty(), "{name}");
    }
    scrape
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape.value(name, labels)
}

fn requests(scrape: &Scrape, method: &str, route: &str, status: &str) -> f64 {
    value(
        scrape,
        "spectask_http_requests_total",
        &[("method", method), ("route", route), ("status", status)],
    )
}

async fn metrics_need_a_credential_and_move(backend: Backend) {
    let app = spawn_app(backend).await;
    for token in [None, Some("st_wrong")] {
        let mut req = app.http.get(format!("{}/api/v1/metrics", app.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }

    let before = scrape(&app).await;
    // The refusals are counted under the route's template, with their status.
    assert_eq!(requests(&before, "GET", "/api/v1/metrics", "401"), 2.0);
    assert_eq!(
        value(&before, "spectask_spec_tasks", &[("status", "backlog")]),
        0.0
    );
    assert_eq!(
        value(&before, "spectask_work_sessions", &[("status", "running")]),
        0.0
    );
    assert_eq!(value(&before, "spectask_merge_queue_depth", &[]), 0.0);
    assert_eq!(value(&before, "spectask_agent_processes_running", &[]), 0.0);

    let project = app.project().await;
    let task = app.task(project, "count me").await;
    let other = app.task(project, "and me").await;
    for id in [task, other, task, 999] {
        app.get(&format!("/api/v1/spec-tasks/{id}")).await;
    }
    let after = scrape(&app).await;
    assert_eq!(requests(&after, "POST", "/api/v1/spec-tasks", "201"), 2.0);
    // By template, never the raw path: three ids are one route.
    assert_eq!(
        requests(&after, "GET", "/api/v1/spec-tasks/{id}", "200"),
        3.0
    );
    assert_eq!(
        requests(&after, "GET", "/api/v1/spec-tasks/{id}", "404"),
        1.0
    );
    assert!(
        !after.samples().any(|s| s["labels"]["route"]
            .as_str()
            .is_some_and(|r| r.contains("999"))),
        "a raw path became a label"
    );
    // The scrape before this one is counted too.
    assert_eq!(requests(&after, "GET", "/api/v1/metrics", "200"), 1.0);
    // The histogram agrees with the counter.
    assert_eq!(
        value(
            &after,
            "spectask_http_request_duration_seconds_count",
            &[("route", "/api/v1/spec-tasks/{id}"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "spectask_http_request_duration_seconds_bucket",
            &[
                ("route", "/api/v1/spec-tasks/{id}"),
                ("status", "200"),
                ("le", "+Inf")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(&after, "spectask_spec_tasks", &[("status", "backlog")]),
        2.0
    );
    let (status, _) = app
        .post(&format!("/api/v1/spec-tasks/{other}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let cancelled = scrape(&app).await;
    assert_eq!(
        value(&cancelled, "spectask_spec_tasks", &[("status", "backlog")]),
        1.0
    );
    assert_eq!(
        value(
            &cancelled,
            "spectask_spec_tasks",
            &[("status", "cancelled")]
        ),
        1.0
    );
    // The newest event, and a fan-out that is not behind once it has caught up.
    let last = app.store.last_event_id().await.unwrap();
    assert_eq!(
        value(&cancelled, "spectask_last_event_id", &[]),
        last as f64
    );

    // A WebSocket client counts from its handshake: the server subscribes before
    // it answers 101.
    assert_eq!(value(&cancelled, "spectask_websocket_clients", &[]), 0.0);
    let ws_url = format!(
        "{}/api/v1/events/ws?after={last}",
        app.url.replace("http://", "ws://")
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.token).parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let live = scrape(&app).await;
    assert_eq!(value(&live, "spectask_websocket_clients", &[]), 1.0);
    drop(socket);
    app.shutdown().await;
}

async fn sessions_and_agents_in_the_figures(backend: Backend) {
    let app = spawn_app(backend).await;
    let project = app.project().await;
    let task = app.task(project, "figures").await;
    let new_session = |name: &str| NewWorkSession {
        spec_task_id: SpecTaskId(task),
        parent_id: None,
        implementation_task_id: None,
        kind: WorkSessionKind::Implementation,
        name: name.into(),
        prompt: "p".into(),
    };
    // One session running, one through its turn and verification into the merge queue.
    let running = app
        .store
        .create_work_session(new_session("one"), "system")
        .await
        .unwrap();
    let merging = app
        .store
        .create_work_session(new_session("two"), "system")
        .await
        .unwrap();
    app.store
        .transition_work_session(running.id, WorkSessionEvent::Start, None, "system")
        .await
        .unwrap();
    for event in [
        WorkSessionEvent::Start,
        WorkSessionEvent::TurnEnded,
        WorkSessionEvent::VerifyPassed,
    ] {
        app.store
            .transition_work_session(merging.id, event, None, "system")
            .await
            .unwrap();
    }
    // The task's agent, sampled as the runtime samples it.
    let instance = app
        .store
        .start_agent_instance(SpecTaskId(task), "test", "system")
        .await
        .unwrap();
    app.store
        .record_instance_sample(instance.id, 5.0, 1024)
        .await
        .unwrap();
    app.store
        .record_instance_sample(instance.id, 12.5, 4 * 1024 * 1024)
        .await
        .unwrap();
    let task_label = task.to_string();
    let figures = scrape(&app).await;
    for (status, n) in [("running", 1.0), ("merging", 1.0), ("pending", 0.0)] {
        assert_eq!(
            value(&figures, "spectask_work_sessions", &[("status", status)]),
            n,
            "{status}"
        );
    }
    assert_eq!(value(&figures, "spectask_merge_queue_depth", &[]), 1.0);
    assert_eq!(
        value(
            &figures,
            "spectask_agent_instances",
            &[("status", "starting")]
        ),
        1.0
    );
    assert_eq!(
        value(&figures, "spectask_agent_processes_running", &[]),
        1.0
    );
    // The newest sample, not the first.
    assert_eq!(
        value(
            &figures,
            "spectask_agent_cpu_percent",
            &[("spec_task", &task_label)]
        ),
        12.5
    );
    assert_eq!(
        value(
            &figures,
            "spectask_agent_memory_bytes",
            &[("spec_task", &task_label)]
        ),
        4.0 * 1024.0 * 1024.0
    );

    // A stopped agent has no process: no usage series, none running.
    app.store
        .transition_agent_instance(
            instance.id,
            AgentInstanceEvent::Stop,
            InstanceReport::default(),
            "system",
        )
        .await
        .unwrap();
    let stopped = scrape(&app).await;
    assert_eq!(
        value(&stopped, "spectask_agent_processes_running", &[]),
        0.0
    );
    assert_eq!(
        value(
            &stopped,
            "spectask_agent_instances",
            &[("status", "stopped")]
        ),
        1.0
    );
    assert!(
        !stopped
            .samples()
            .any(|s| s["name"] == "spectask_agent_cpu_percent"),
        "a stopped agent still has a CPU figure"
    );
    app.shutdown().await;
}

/// Fetches `/readyz` with no credential, as a load balancer does.
async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    let resp = app
        .http
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn readyz_reports_the_database_and_the_loops(backend: Backend) {
    // Without the background loops (the API tests' setting) they are `disabled`,
    // which is no fault.
    let app = spawn_app(backend).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"ready": true, "database": "ok", "loops": {
            "event_hub": "running", "implementer": "disabled",
            "notifier": "disabled", "planner": "disabled"}})
    );
    app.shutdown().await;

    let app = spawn_app_with(backend, |c| c.background = true).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"ready": true, "database": "ok", "loops": {
            "event_hub": "running", "implementer": "running",
            "notifier": "running", "planner": "running"}})
    );

    // The database goes away: SQLite's pool closed, PostgreSQL's database dropped
    // under the server (its connections terminated).
    match backend {
        Backend::Sqlite => app.store.close().await,
        Backend::Postgres => {
            let name = app.database_url().rsplit('/').next().unwrap().to_string();
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), readyz(&app))
        .await
        .expect("readyz answers while the database is gone");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["database"], "unavailable");
    assert_eq!(body["loops"]["planner"], "running");
    // `/healthz` is liveness only: the process still answers.
    let health = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed() {
    let app = spawn_app(Backend::Sqlite).await;
    let id_of =
        |resp: &reqwest::Response| resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let get = |id: Option<&'static str>| {
        let mut req = app
            .http
            .get(format!("{}/api/v1/projects", app.url))
            .bearer_auth(&app.token);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    // A sane id from the client (a proxy's) is kept.
    let resp = get(Some("edge-7f3a.1")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(id_of(&resp), "edge-7f3a.1");
    // None, or one that is not a short safe token: one of ours, fresh each time.
    let long: &'static str = "x".repeat(65).leak();
    let mut seen = std::collections::BTreeSet::new();
    for sent in [None, Some("two words"), Some("a\"b"), Some(long)] {
        let resp = get(sent).await.unwrap();
        let id = id_of(&resp);
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert!(seen.insert(id));
    }
    // Every answer carries one: refusals, the dashboard, health.
    for path in ["/api/v1/spec-tasks", "/", "/healthz", "/readyz"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
    }
    app.shutdown().await;
}

/// The real binary's log (JSON lines): one `info` line per request with its method,
/// route template, status, latency and request id; never a token, a query string
/// or a body.
#[test]
fn one_log_line_per_request_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spectask"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--log-format", "json", "serve", "--bind", "127.0.0.1:0"])
        .env_remove("SPECTASK_BIND")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::process::output_lines(&mut child);
    let mut log = Vec::new();
    let url = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not start:\n{}", log.join("\n")));
        if let Some(url) = line.strip_prefix("spectask is listening on ") {
            break url.trim().to_string();
        }
        log.push(line);
    };
    let token = std::fs::read_to_string(dir.path().join("token"))
        .unwrap()
        .trim()
        .to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let secret_query = "st_querysecret0123456789";
    runtime.block_on(async {
        let resp = http
            .get(format!("{url}/api/v1/spec-tasks/42?token={secret_query}"))
            .bearer_auth(&token)
            .header("x-request-id", "req-logged-1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        // A credential in a body: sign-in with the token.
        let resp = http
            .post(format!("{url}/api/v1/auth/sign-in"))
            .header("x-request-id", "req-logged-2")
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    });
    // Each request's line is written before its response goes out; wait for both.
    let mut found = std::collections::BTreeMap::new();
    while found.len() < 2 {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no request lines in:\n{}", log.join("\n")));
        log.push(line.clone());
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let fields = &entry["fields"];
        if let Some(id) = fields["request_id"].as_str()
            && id.starts_with("req-logged-")
        {
            found.insert(id.to_string(), entry.clone());
        }
    }
    let first = &found["req-logged-1"];
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["target"], "spectask::http");
    let fields = &first["fields"];
    assert_eq!(fields["message"], "request");
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["route"], "/api/v1/spec-tasks/{id}");
    assert_eq!(fields["status"], 404);
    assert!(fields["latency_ms"].as_f64().unwrap() >= 0.0, "{fields}");
    let second = &found["req-logged-2"]["fields"];
    assert_eq!(second["method"], "POST");
    assert_eq!(second["route"], "/api/v1/auth/sign-in");
    let _ = child.kill();
    let _ = child.wait();
    // What else it printed meanwhile, then: no secret anywhere.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        log.push(line);
    }
    let all = log.join("\n");
    assert!(!all.contains(&token), "the token is in the log:\n{all}");
    assert!(!all.contains(secret_query), "a query string is in the log");
    assert!(!all.contains("?token"), "a query string is in the log");
    assert!(
        !all.contains("/spec-tasks/42"),
        "a raw path is in the log:\n{all}"
    );
}
