//! The browser's side of the server, over real HTTP and real WebSockets: signing in
//! with a one-time link or a pasted token, the session cookie and its Origin check,
//! sign-out and expiry, the event stream (replay, live, reconnect, slow clients,
//! credentials), and the embedded dashboard's files.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::app::{TestApp, spawn_app, spawn_app_with};
use common::db::Backend;
use futures::StreamExt;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

const WAIT: Duration = Duration::from_secs(30);

/// Signs in with `body`; returns the status, the JSON and the `Set-Cookie` header.
async fn sign_in(app: &TestApp, body: Value) -> (StatusCode, Value, Option<String>) {
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/sign-in", app.url))
        .header(ORIGIN, &app.url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap_or(Value::Null), cookie)
}

fn code_of(app: &TestApp) -> String {
    app.sign_in
        .strip_prefix("/sign-in#code=")
        .expect("a sign-in path")
        .to_string()
}

/// `spectask_session=…` from a `Set-Cookie` header, as a `Cookie` header sends it.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

/// A request authenticated by the cookie alone, with `origin` if given.
async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, format!("{}/api/v1{path}", app.url))
        .header(COOKIE, cookie);
    if let Some(o) = origin {
        req = req.header(ORIGIN, o);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_works_once_and_its_cookie_until_sign_out() {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, _) = with_cookie(&app, Method::GET, "/auth/session", "x=1", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body, set_cookie) = sign_in(&app, json!({ "code": code_of(&app) })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_name"], "admin");
    let set_cookie = set_cookie.expect("sign-in sets the session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = cookie_pair(&set_cookie);
    assert!(
        !cookie.contains(&app.token),
        "the cookie is not the API token"
    );

    // The link is spent.
    let (status, body, set) = sign_in(&app, json!({ "code": code_of(&app) })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(set.is_none());

    let (status, who) = with_cookie(&app, Method::GET, "/auth/session", &cookie, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who["via"], "cookie");
    assert!(who["expires_at"].is_string());
    let (status, _) = with_cookie(&app, Method::GET, "/spec-tasks", &cookie, None, None).await;
    assert_eq!(status, StatusCode::OK);

    // Writes with the cookie must come from the dashboard's own origin.
    let create = || Some(json!({ "name": "from the browser" }));
    let (status, body) = with_cookie(&app, Method::POST, "/tokens", &cookie, None, create()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let evil = Some("http://evil.example");
    let (status, _) = with_cookie(&app, Method::POST, "/tokens", &cookie, evil, create()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get("/api/v1/tokens").await;
    assert_eq!(status, StatusCode::OK);
    let (_, tokens) = app.get("/api/v1/tokens").await;
    assert_eq!(tokens.as_array().unwrap().len(), 1, "nothing was created");
    let own = Some(app.url.as_str());
    let (status, body) = with_cookie(&app, Method::POST, "/tokens", &cookie, own, create()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A bearer token is not a browser: no Origin needed.
    let (status, _) = app
        .post("/api/v1/tokens", json!({ "name": "script" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A cross-site page cannot sign a visitor in either.
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/sign-in", app.url))
        .header(ORIGIN, "http://evil.example")
        .json(&json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let (status, _) = with_cookie(&app, Method::POST, "/auth/sign-out", &cookie, own, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = with_cookie(&app, Method::GET, "/spec-tasks", &cookie, None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "signed out on the server, not only the cookie"
    );

    let (_, events) = app.get("/api/v1/events?limit=1000").await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"token.signed_in") && kinds.contains(&"token.signed_out"));
    let log = serde_json::to_string(&events).unwrap();
    assert!(!log.contains(&code_of(&app)) && !log.contains(&app.token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_token_signs_in_until_it_is_revoked() {
    let app = spawn_app(Backend::Postgres).await;
    let (status, body, _) = sign_in(&app, json!({ "token": "st_wrong" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body, _) = sign_in(&app, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let both = json!({ "token": app.token, "code": code_of(&app) });
    let (status, _, _) = sign_in(&app, both).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, made) = app
        .post("/api/v1/tokens", json!({ "name": "laptop" }))
        .await;
    let (status, body, set_cookie) = sign_in(&app, json!({ "token": made["token"] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_name"], "laptop");
    let cookie = cookie_pair(&set_cookie.unwrap());
    let (status, _) = with_cookie(&app, Method::GET, "/projects", &cookie, None, None).await;
    assert_eq!(status, StatusCode::OK);
    let id = made["id"].as_i64().unwrap();
    let (status, _) = app
        .post(&format!("/api/v1/tokens/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = with_cookie(&app, Method::GET, "/projects", &cookie, None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoking the token ends its sessions"
    );

    // `spectask dashboard`'s route: a fresh link, for the caller's token.
    let (status, link) = app.post("/api/v1/auth/sign-in-links", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let path = link["path"].as_str().unwrap();
    assert_eq!(
        path,
        format!("/sign-in#code={}", link["code"].as_str().unwrap())
    );
    let (status, body, _) = sign_in(&app, json!({ "code": link["code"] })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_name"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_expires() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.web.session_ttl = Duration::from_secs(1);
    })
    .await;
    let (_, _, set_cookie) = sign_in(&app, json!({ "code": code_of(&app) })).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    let (status, _) = with_cookie(&app, Method::GET, "/projects", &cookie, None, None).await;
    assert_eq!(status, StatusCode::OK);
    // Wait for the expiry the server reports, then the cookie must be refused.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) = with_cookie(&app, Method::GET, "/projects", &cookie, None, None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `/api/v1/events/ws?{query}` with the given headers.
async fn ws_connect(
    app: &TestApp,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    ws_connect_with(app, query, headers, None).await
}

/// As [`ws_connect`], with the client's receive buffer set to `recv_buffer` bytes.
async fn ws_connect_with(
    app: &TestApp,
    query: &str,
    headers: &[(&str, &str)],
    recv_buffer: Option<u32>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let addr: std::net::SocketAddr = app.url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/api/v1/events/ws?{query}");
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name: reqwest::header::HeaderName = name.parse().unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    Ok(ws)
}

fn bearer(app: &TestApp) -> String {
    format!("Bearer {}", app.token)
}

/// What a client reads next that matters: an event's id, `caught_up`, or a close.
#[derive(Debug, PartialEq)]
enum Frame {
    Event(i64, Value),
    CaughtUp(i64),
    Closed(Option<(u16, String)>),
}

async fn next_frame(ws: &mut Ws) -> Frame {
    // One deadline for the frame: pings on the way do not extend it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a frame within the timeout");
        match message {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).unwrap();
                return match v["type"].as_str().unwrap() {
                    "event" => Frame::Event(v["event"]["id"].as_i64().unwrap(), v["event"].clone()),
                    "caught_up" => Frame::CaughtUp(v["after"].as_i64().unwrap()),
                    other => panic!("unexpected frame type {other}"),
                };
            }
            Some(Ok(Message::Close(frame))) => {
                return Frame::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Closed(None),
        }
    }
}

/// Reads events until `caught_up`; returns their ids and the cursor it reported.
async fn replay(ws: &mut Ws) -> (Vec<i64>, i64) {
    let mut ids = Vec::new();
    loop {
        match next_frame(ws).await {
            Frame::Event(id, _) => ids.push(id),
            Frame::CaughtUp(after) => return (ids, after),
            Frame::Closed(c) => panic!("closed during replay: {c:?}"),
        }
    }
}

async fn all_event_ids(app: &TestApp, spec_task: Option<i64>) -> Vec<i64> {
    let filter = spec_task
        .map(|t| format!("&spec_task={t}"))
        .unwrap_or_default();
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = app
            .get(&format!("/api/v1/events?after={after}&limit=1000{filter}"))
            .await;
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return ids;
        }
        ids.extend(items.iter().map(|e| e["id"].as_i64().unwrap()));
        after = page["next_after"].as_i64().unwrap();
    }
}

async fn make_tokens(app: &TestApp, n: usize, prefix: &str) {
    for i in 0..n {
        let (status, _) = app
            .post("/api/v1/tokens", json!({ "name": format!("{prefix}{i}") }))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
}

async fn ws_replays_then_streams_live(backend: Backend) {
    let app = spawn_app(backend).await;
    make_tokens(&app, 5, "before").await;
    let before = all_event_ids(&app, None).await;
    let mut ws = ws_connect(&app, "after=0", &[("authorization", &bearer(&app))])
        .await
        .unwrap();
    let (ids, after) = replay(&mut ws).await;
    assert_eq!(ids, before, "the replay is the log, in order");
    assert_eq!(after, *before.last().unwrap());
    let (_, page) = app.get("/api/v1/events?after=0&limit=1").await;
    assert_eq!(
        page["last_id"],
        *before.last().unwrap(),
        "where a client starts listening"
    );

    // From a cursor: only what came after it.
    let mid = before[2];
    let mut from_mid = ws_connect(
        &app,
        &format!("after={mid}"),
        &[("authorization", &bearer(&app))],
    )
    .await
    .unwrap();
    let (ids, _) = replay(&mut from_mid).await;
    assert_eq!(ids, before[3..].to_vec());

    // Live: each event as it commits, with the fields GET /events gives.
    let pid = app.project().await;
    let (_, project) = app.get(&format!("/api/v1/projects/{pid}")).await;
    let listed = all_event_ids(&app, None).await;
    let Frame::Event(id, event) = next_frame(&mut ws).await else {
        panic!("expected a live event");
    };
    assert_eq!(id, *listed.last().unwrap());
    assert_eq!(event["kind"], "project.created");
    assert_eq!(event["entity_id"], project["id"]);
    let Frame::Event(id2, _) = next_frame(&mut from_mid).await else {
        panic!("expected a live event");
    };
    assert_eq!(id2, id);

    // A filter by spec task, in the replay and live.
    let (_, task) = app
        .post(
            "/api/v1/spec-tasks",
            json!({ "project_id": pid, "title": "One", "prompt": "p" }),
        )
        .await;
    let tid = task["id"].as_i64().unwrap();
    make_tokens(&app, 2, "noise").await;
    let mut only = ws_connect(
        &app,
        &format!("after=0&spec_task={tid}"),
        &[("authorization", &bearer(&app))],
    )
    .await
    .unwrap();
    let (ids, _) = replay(&mut only).await;
    assert_eq!(ids, all_event_ids(&app, Some(tid)).await);
    app.post(&format!("/api/v1/spec-tasks/{tid}/cancel"), json!({}))
        .await;
    make_tokens(&app, 1, "more").await;
    let Frame::Event(_, event) = next_frame(&mut only).await else {
        panic!("expected the task's event");
    };
    assert_eq!(event["spec_task_id"], tid);
    assert_eq!(event["kind"], "spec_task.status_changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ws_replays_then_streams_live() {
    ws_replays_then_streams_live(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ws_replays_then_streams_live() {
    ws_replays_then_streams_live(Backend::Postgres).await
}

/// A client that disconnects at arbitrary points while events commit, and reconnects
/// with the last id it saw, ends with every event exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_the_cursor_misses_nothing_and_repeats_nothing() {
    let app = std::sync::Arc::new(spawn_app(Backend::Sqlite).await);
    let writer = {
        let app = app.clone();
        tokio::spawn(async move { make_tokens(&app, 150, "w").await })
    };
    let auth = bearer(&app);
    let headers = [("authorization", auth.as_str())];
    let mut seen: Vec<i64> = Vec::new();
    let connect = |seen: &Vec<i64>| format!("after={}", seen.last().copied().unwrap_or(0));
    // Drop the connection after this many events each time (72 of the 151 there will be).
    for reads in [3usize, 1, 17, 40, 2, 9] {
        let mut ws = ws_connect(&app, &connect(&seen), &headers).await.unwrap();
        let mut read = 0;
        while read < reads {
            match next_frame(&mut ws).await {
                Frame::Event(id, _) => {
                    seen.push(id);
                    read += 1;
                }
                Frame::CaughtUp(_) => {}
                Frame::Closed(c) => panic!("closed: {c:?}"),
            }
        }
        drop(ws);
    }
    writer.await.unwrap();
    let all = all_event_ids(&app, None).await;
    let mut ws = ws_connect(&app, &connect(&seen), &headers).await.unwrap();
    while seen.len() < all.len() {
        match next_frame(&mut ws).await {
            Frame::Event(id, _) => seen.push(id),
            Frame::CaughtUp(_) => {}
            Frame::Closed(c) => panic!("closed: {c:?}"),
        }
    }
    assert_eq!(seen, all, "every event once, in order");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len());
}

/// A client that stops reading is closed with 4008 and the cursor to resume from,
/// while a client beside it keeps receiving every event as it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_told_to_reconnect_and_slows_no_one() {
    let app = std::sync::Arc::new(
        // Room for a fast client on a busy machine (it fell 27 behind once, under a
        // loaded full suite), far less than the 1,500 events the slow one misses.
        spawn_app_with(Backend::Sqlite, |c| {
            c.web.ws_buffer = 256;
            c.web.socket_send_buffer = Some(8192);
        })
        .await,
    );
    let auth = bearer(&app);
    let headers = [("authorization", auth.as_str())];
    let mut slow = ws_connect_with(&app, "after=0", &headers, Some(4096))
        .await
        .unwrap();
    let mut fast = ws_connect(&app, "after=0", &headers).await.unwrap();
    let (slow_replayed, _) = replay(&mut slow).await;
    let (fast_replayed, _) = replay(&mut fast).await;
    assert_eq!(slow_replayed, fast_replayed);

    // The slow client reads nothing from here on while events pile up.
    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            make_tokens(&app, 1500, "a-fairly-long-token-name-to-fill-buffers-").await
        })
    };
    // Exactly 1,500 events are coming; the last can arrive before the writer has
    // its last response back, so count frames rather than wait on the writer.
    let mut fast_ids = Vec::new();
    while fast_ids.len() < 1500 {
        match next_frame(&mut fast).await {
            Frame::Event(id, _) => fast_ids.push(id),
            other => panic!("the fast client got {other:?}"),
        }
    }
    writer.await.unwrap();
    let all = all_event_ids(&app, None).await;
    assert_eq!(
        fast_ids,
        all[all.len() - 1500..].to_vec(),
        "the fast client got everything live"
    );

    // Now the slow one reads: what was buffered for it, then the close.
    let mut slow_ids = Vec::new();
    let close = loop {
        match next_frame(&mut slow).await {
            Frame::Event(id, _) => slow_ids.push(id),
            Frame::Closed(close) => break close,
            Frame::CaughtUp(_) => panic!("no second caught_up"),
        }
    };
    let (code, reason) = close.expect("a close frame with a reason");
    assert_eq!(code, 4008, "{reason}");
    assert!(
        slow_ids.len() < 1500,
        "it fell behind: {} of 1500",
        slow_ids.len()
    );
    let resume = slow_ids
        .last()
        .copied()
        .unwrap_or(*slow_replayed.last().unwrap());
    assert!(reason.contains(&format!("after={resume}")), "{reason}");
    // And resuming from there gets exactly the rest.
    let mut again = ws_connect(&app, &format!("after={resume}"), &headers)
        .await
        .unwrap();
    let (rest, _) = replay(&mut again).await;
    slow_ids.extend(rest);
    assert_eq!(slow_ids, all[slow_replayed.len()..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_refuses_missing_bad_and_cross_site_credentials() {
    let app = spawn_app(Backend::Sqlite).await;
    let status_of = |r: Result<Ws, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    };
    assert_eq!(status_of(ws_connect(&app, "after=0", &[]).await), 401);
    let bad = [("authorization", "Bearer st_nope")];
    assert_eq!(status_of(ws_connect(&app, "after=0", &bad).await), 401);
    assert_eq!(
        status_of(ws_connect(&app, "after=-1", &[("authorization", &bearer(&app))]).await),
        422
    );
    let (_, _, set_cookie) = sign_in(&app, json!({ "code": code_of(&app) })).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    let evil = [
        ("cookie", cookie.as_str()),
        ("origin", "http://evil.example"),
    ];
    assert_eq!(status_of(ws_connect(&app, "after=0", &evil).await), 403);
    let none = [("cookie", cookie.as_str())];
    assert_eq!(status_of(ws_connect(&app, "after=0", &none).await), 403);
    let own = [("cookie", cookie.as_str()), ("origin", app.url.as_str())];
    let mut ws = ws_connect(&app, "after=0", &own).await.unwrap();
    replay(&mut ws).await;

    // Signing out ends the cookie for new connections.
    let (status, _) = with_cookie(
        &app,
        Method::POST,
        "/auth/sign-out",
        &cookie,
        Some(&app.url),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(status_of(ws_connect(&app, "after=0", &own).await), 401);
}

/// A peer that completes the handshake and then never says anything (not even a
/// pong) is closed by the server's heartbeat. The client here is raw TCP, because a
/// WebSocket library answers pings by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_answering_pings_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.web.ws_heartbeat = Duration::from_millis(100);
    })
    .await;
    let addr = app.url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let handshake = format!(
        "GET /api/v1/events/ws?after=0 HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {}\r\n\r\n",
        app.token
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"));
    // Read server frames (unmasked) until the close: count the pings on the way.
    let (mut pings, mut close) = (0, None);
    tokio::time::timeout(WAIT, async {
        loop {
            let b0 = tcp.read_u8().await.unwrap();
            let len = match tcp.read_u8().await.unwrap() & 0x7f {
                126 => u64::from(tcp.read_u16().await.unwrap()),
                127 => tcp.read_u64().await.unwrap(),
                n => u64::from(n),
            };
            let mut payload = vec![0; len as usize];
            tcp.read_exact(&mut payload).await.unwrap();
            match b0 & 0x0f {
                0x9 => pings += 1,
                0x8 => {
                    close = Some(payload);
                    return;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the server closed the silent connection");
    let close = close.unwrap();
    assert!(pings >= 1, "the server pinged first");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1001);
    assert_eq!(String::from_utf8_lossy(&close[2..]), "no answer to pings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_with_caching_and_client_routes() {
    let app = spawn_app(Backend::Sqlite).await;
    let index =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist/index.html"))
            .expect("web/dist is committed");
    for path in ["/", "/tasks/12", "/tasks/12/spec?v=2", "/sign-in"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        assert!(
            resp.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        assert_eq!(resp.text().await.unwrap(), index, "{path}");
    }
    // A hashed asset: long cache, gzip on request, 304 on its ETag.
    let asset = index
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("index.html loads a script from /assets/");
    let url = format!("{}{asset}", app.url);
    let plain = app.http.get(&url).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].clone();
    let body = plain.bytes().await.unwrap();
    let zipped = app
        .http
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let zipped_etag = zipped.headers()["etag"].clone();
    assert_ne!(zipped_etag, etag);
    let compressed = zipped.bytes().await.unwrap();
    assert!(compressed.len() < body.len());
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, body);
    let cached = app
        .http
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert!(cached.bytes().await.unwrap().is_empty());

    let missing = app
        .http
        .get(format!("{}/assets/nope.js", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let api = app
        .http
        .get(format!("{}/api/v2/x", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
}

/// `spectask dashboard` prints a fresh one-time link that signs a browser in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_command_prints_a_working_link() {
    let app = spawn_app(Backend::Sqlite).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_spectask"))
        .args([
            "--url",
            &app.url,
            "--token",
            &app.token,
            "dashboard",
            "--no-open",
        ])
        .env_remove("DISPLAY")
        .env_remove("BROWSER")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let link = stdout.lines().next().unwrap();
    let code = link
        .strip_prefix(&format!("{}/sign-in#code=", app.url))
        .unwrap_or_else(|| panic!("a sign-in link on {}: {stdout}", app.url));
    let (status, body, _) = sign_in(&app, json!({ "code": code })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = sign_in(&app, json!({ "code": code })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "once only");
}
