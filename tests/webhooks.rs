//! Webhooks against a real HTTP receiver the test starts on port 0: the payload and
//! its HMAC signature, a receiver that fails twice then succeeds (the notification
//! arrives once, on the third attempt), and a receiver that never answers while the
//! run goes on to its end. The notifier is the real loop (`Notifier::spawn_loop`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::app::TestApp;
use common::plan::{WAIT, commit_templates, drive, scripted_app, wait_for, wait_status};
use serde_json::{Value, json};
use spectask::config::WebhookSettings;
use spectask::orchestrator::webhooks::{Notifier, signature};
use tokio::sync::mpsc;

#[derive(Clone, Copy)]
enum Behaviour {
    Answer,
    /// 500 for the first N requests, then 200.
    FailFirst(usize),
    /// Reads the request and never answers.
    Hang,
}

struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Receiver {
    behaviour: Behaviour,
    seen: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<Received>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = r.seen.fetch_add(1, Ordering::SeqCst);
    r.tx.send(Received { headers, body }).unwrap();
    match r.behaviour {
        Behaviour::Answer => StatusCode::OK,
        Behaviour::FailFirst(k) if n < k => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::FailFirst(_) => StatusCode::NO_CONTENT,
        Behaviour::Hang => std::future::pending().await,
    }
}

/// A receiver on port 0: its URL and what it receives.
async fn receiver(behaviour: Behaviour) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Receiver {
        behaviour,
        seen: Arc::default(),
        tx,
    };
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>, what: &str) -> Received {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("the receiver never got {what}"))
        .unwrap()
}

fn settings(timeout: Duration) -> WebhookSettings {
    WebhookSettings {
        timeout,
        backoff: Duration::from_millis(50),
        max_attempts: 5,
        public_url: None,
    }
}

async fn add_webhook(app: &TestApp, body: Value) -> (i64, String) {
    let (status, created) = app.post("/api/v1/webhooks", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created["webhook"].get("secret").is_none(),
        "the secret is not part of the webhook: {created}"
    );
    (
        created["webhook"]["id"].as_i64().unwrap(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

/// A task whose spec is recorded: it waits in `spec_review`.
async fn task_in_review(app: &TestApp, project: i64, title: &str, plan: &str) -> i64 {
    let id = app.task(project, title).await;
    app.post(
        &format!("/api/v1/spec-tasks/{id}/start-planning"),
        json!({}),
    )
    .await;
    common::spec::record_spec(app, id, common::spec::DESIGN, plan).await;
    id
}

const PLAN: &str = "# Implementation Plan\n\n- [ ] 1. One\n  - write one.txt one\n";

async fn deliveries(app: &TestApp, hook: i64) -> Vec<Value> {
    let (status, list) = app
        .get(&format!("/api/v1/webhooks/{hook}/deliveries"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_posted_signed_with_a_link_into_the_dashboard() {
    let app = scripted_app(|_| {}).await;
    let (project, _repo) = app.project_with_repo().await;
    let (url, mut rx) = receiver(Behaviour::Answer).await;
    let (hook, secret) = add_webhook(
        &app,
        json!({ "url": url, "project_id": project, "kinds": ["spec_review"] }),
    )
    .await;
    let notifier = Notifier::new(
        app.store.clone(),
        settings(Duration::from_secs(5)),
        app.url.clone(),
    );
    let _loop = notifier.spawn_loop();

    let task = task_in_review(&app, project, "Log in", PLAN).await;
    let got = next(&mut rx, "the spec review notification").await;
    let sig = got.headers["x-spectask-signature"].to_str().unwrap();
    assert_eq!(sig, signature(&secret, &got.body));
    assert_ne!(sig, signature("another secret", &got.body));
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["x-spectask-event"], "spec_review");
    let payload: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(payload["kind"], "spec_review");
    assert_eq!(payload["task"]["id"], task);
    assert_eq!(payload["project_id"], project);
    assert_eq!(payload["link"], format!("{}/tasks/{task}/spec", app.url));
    assert!(
        payload["title"].as_str().unwrap().contains("Log in"),
        "{payload}"
    );

    // The same thing in the inbox, the API list and the delivery record.
    let (_, inbox) = app.get("/api/v1/notifications").await;
    let entry = inbox
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["spec_task_id"] == task)
        .cloned()
        .unwrap_or_else(|| panic!("not in the inbox: {inbox}"));
    assert_eq!(entry["key"], payload["key"]);
    assert_eq!(entry["link"], format!("/tasks/{task}/spec"));
    let list = wait_for(&app, "the delivery to be recorded as delivered", || async {
        let list = deliveries(&app, hook).await;
        (list.first().is_some_and(|d| d["status"] == "delivered")).then_some(list)
    })
    .await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["last_status"], 200);

    // A second review is a second notification; the first is never sent again.
    let second = task_in_review(&app, project, "Log out", PLAN).await;
    let got = next(&mut rx, "the second notification").await;
    let payload: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(payload["task"]["id"], second);
    // Rejecting a spec handles it: the entry leaves the inbox.
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{task}/reject"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, inbox) = app.get("/api/v1/notifications").await;
    assert!(
        !inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["spec_task_id"] == task),
        "{inbox}"
    );
    assert!(rx.try_recv().is_err(), "nothing else was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_twice_gets_the_notification_exactly_once() {
    let app = scripted_app(|_| {}).await;
    let (project, _repo) = app.project_with_repo().await;
    let (url, mut rx) = receiver(Behaviour::FailFirst(2)).await;
    let (hook, secret) = add_webhook(&app, json!({ "url": url, "format": "slack" })).await;
    let notifier = Notifier::new(
        app.store.clone(),
        settings(Duration::from_secs(5)),
        app.url.clone(),
    );
    let _loop = notifier.spawn_loop();
    let task = task_in_review(&app, project, "Log in", PLAN).await;

    let mut bodies = Vec::new();
    for attempt in 1..=3 {
        let got = next(&mut rx, &format!("attempt {attempt}")).await;
        assert_eq!(got.headers["x-spectask-attempt"], attempt.to_string());
        assert_eq!(
            got.headers["x-spectask-signature"].to_str().unwrap(),
            signature(&secret, &got.body)
        );
        bodies.push((got.headers["x-spectask-delivery"].clone(), got.body));
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every attempt is the same delivery with the same body"
    );
    let slack: Value = serde_json::from_slice(&bodies[0].1).unwrap();
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{}/tasks/{task}/spec|Open in spectask", app.url)),
        "{slack}"
    );
    let list = wait_for(&app, "the third attempt to be recorded", || async {
        let list = deliveries(&app, hook).await;
        (list.first().is_some_and(|d| d["status"] == "delivered")).then_some(list)
    })
    .await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["attempts"], 3);
    // The loop goes on (a second notification is sent and answered) and the first
    // one is not sent a fourth time.
    let second = task_in_review(&app, project, "Log out", PLAN).await;
    let got = next(&mut rx, "the second notification").await;
    assert_ne!(got.headers["x-spectask-delivery"], bodies[0].0);
    let text: Value = serde_json::from_slice(&got.body).unwrap();
    assert!(
        text["text"]
            .as_str()
            .unwrap()
            .contains(&format!("/tasks/{second}/spec")),
        "{text}"
    );
    wait_for(&app, "the second delivery", || async {
        let list = deliveries(&app, hook).await;
        (list.len() == 2 && list.iter().all(|d| d["status"] == "delivered")).then_some(())
    })
    .await;
    assert!(rx.try_recv().is_err(), "no attempt beyond the third");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_does_not_delay_the_run() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let (url, mut rx) = receiver(Behaviour::Hang).await;
    let (hook, _) = add_webhook(&app, json!({ "url": url })).await;
    // An attempt may take a minute: far longer than the whole run.
    let notifier = Notifier::new(
        app.store.clone(),
        settings(Duration::from_secs(60)),
        app.url.clone(),
    );
    let _loop = notifier.spawn_loop();
    let task = task_in_review(&app, project, "Log in", PLAN).await;
    next(&mut rx, "the spec review notification").await;

    // While that request hangs, the spec is approved and the run goes to its end.
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{task}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let driver = drive(&app);
    wait_status(&app, task, "implementation_review").await;
    driver.abort();
    // The end's notification goes out too, beside the one still hanging.
    let got = next(&mut rx, "the implementation review notification").await;
    let payload: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(payload["kind"], "implementation_review");
    let list = deliveries(&app, hook).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list.iter()
            .all(|d| d["status"] == "pending" && d["attempts"] == 1),
        "both attempts are still waiting for an answer: {list:?}"
    );
}

#[tokio::test]
async fn bad_webhooks_are_refused_and_change_nothing() {
    let app = scripted_app(|_| {}).await;
    for (body, status) in [
        (json!({ "url": "ftp://example.com/x" }), 422),
        (json!({ "url": "https://" }), 422),
        (
            json!({ "url": "https://example.com", "kinds": ["nope"] }),
            422,
        ),
        (
            json!({ "url": "https://example.com", "format": "teams" }),
            422,
        ),
        (
            json!({ "url": "https://example.com", "project_id": 999 }),
            404,
        ),
        (
            json!({ "url": "https://example.com", "secret": "mine" }),
            422,
        ),
    ] {
        let (got, answer) = app.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body} → {answer}");
    }
    let (_, list) = app.get("/api/v1/webhooks").await;
    assert_eq!(list, json!([]));
    let (status, _) = app
        .call(reqwest::Method::DELETE, "/api/v1/webhooks/5", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/webhooks/5/deliveries").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (id, _) = add_webhook(&app, json!({ "url": "https://example.com/h" })).await;
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = app.get("/api/v1/webhooks").await;
    assert_eq!(list, json!([]));
    // Deleted is gone: its deliveries, and a second delete.
    let (status, _) = app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_receiver_is_given_up_after_its_attempts_with_the_cause() {
    let app = scripted_app(|_| {}).await;
    let (project, _repo) = app.project_with_repo().await;
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (hook, _) = add_webhook(
        &app,
        json!({ "url": format!("http://127.0.0.1:{port}/secret-path") }),
    )
    .await;
    let notifier = Notifier::new(
        app.store.clone(),
        settings(Duration::from_secs(5)),
        app.url.clone(),
    );
    let _loop = notifier.spawn_loop();
    task_in_review(&app, project, "Log in", PLAN).await;
    let d = wait_for(&app, "the delivery to be given up", || async {
        let list = deliveries(&app, hook).await;
        list.first().filter(|d| d["status"] == "failed").cloned()
    })
    .await;
    assert_eq!(d["attempts"], 5, "{d}");
    assert!(d["next_attempt_at"].is_null(), "{d}");
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("onnection refused"), "{error}");
    // The URL's path can be a credential: it is in no event.
    let (_, events) = app.get("/api/v1/events?limit=1000").await;
    assert!(!events.to_string().contains("secret-path"), "{events}");
}
