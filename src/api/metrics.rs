//! Operations: one log line per request, the request id, and `GET /api/v1/metrics` in
//! the Prometheus text exposition format (0.0.4).
//!
//! The registry is hand-written on purpose: the figures are a handful of counters
//! and histograms keyed by (method, route template, status), which a `Mutex`'d map
//! holds for the cost of one short lock per request; a metrics crate would bring a
//! global registry and a dependency tree for that. Figures that live in the
//! database (tasks, sessions, agents) are read at scrape time, so every replica
//! reports the same truth and nothing drifts.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::domain::{AgentInstanceStatus, SpecTaskStatus, WorkSessionStatus};

/// The header a request id travels in, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The exposition format's content type, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the latency histogram's buckets: from a cached GET
/// (a millisecond) to a long poll (`GET /events?wait=`, up to its limit).
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// The route label of a request no route matched (the dashboard's files, unknown
/// paths): one label, so a scanner trying random paths cannot grow the registry.
const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct HttpKey {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Default)]
struct HttpSeries {
    count: u64,
    sum_secs: f64,
    /// Not cumulative: `buckets[i]` counts the requests that fell in bucket `i` only
    /// (the last slot is above every bound); rendering sums them up.
    buckets: [u64; BUCKETS.len() + 1],
}

/// The in-process figures: HTTP requests by route template and status.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<HashMap<HttpKey, HttpSeries>>,
}

impl Metrics {
    pub fn observe(&self, method: &Method, route: &str, status: u16, latency: Duration) {
        let key = HttpKey {
            method: method_label(method),
            route: route.to_string(),
            status,
        };
        let secs = latency.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let series = http.entry(key).or_default();
        series.count += 1;
        series.sum_secs += secs;
        series.buckets[slot] += 1;
    }

    /// The HTTP families, in the text format.
    fn render_http(&self, out: &mut String) {
        let http: BTreeMap<HttpKey, HttpSeries> = {
            let http = self.http.lock().unwrap_or_else(|e| e.into_inner());
            http.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        family(
            out,
            "spectask_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status.",
        );
        for (key, series) in &http {
            let _ = writeln!(
                out,
                "spectask_http_requests_total{} {}",
                http_labels(key, None),
                series.count
            );
        }
        family(
            out,
            "spectask_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response's head, by method, route template and status.",
        );
        for (key, series) in &http {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += series.buckets[i];
                let _ = writeln!(
                    out,
                    "spectask_http_request_duration_seconds_bucket{} {cumulative}",
                    http_labels(key, Some(&bound.to_string()))
                );
            }
            let _ = writeln!(
                out,
                "spectask_http_request_duration_seconds_bucket{} {}",
                http_labels(key, Some("+Inf")),
                series.count
            );
            let labels = http_labels(key, None);
            let _ = writeln!(
                out,
                "spectask_http_request_duration_seconds_sum{labels} {}",
                series.sum_secs
            );
            let _ = writeln!(
                out,
                "spectask_http_request_duration_seconds_count{labels} {}",
                series.count
            );
        }
    }
}

/// A bounded set of method labels: anything unusual is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn http_labels(key: &HttpKey, le: Option<&str>) -> String {
    let mut labels = format!(
        "{{method=\"{}\",route=\"{}\",status=\"{}\"",
        key.method,
        escape(&key.route),
        key.status
    );
    if let Some(le) = le {
        let _ = write!(labels, ",le=\"{le}\"");
    }
    labels.push('}');
    labels
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A gauge with one `status` label per value of a status enum: every status is
/// written, zeros included, so a series never vanishes from a dashboard.
fn by_status(
    out: &mut String,
    name: &str,
    help: &str,
    all: impl Iterator<Item = &'static str>,
    counts: &[(String, i64)],
) {
    family(out, name, "gauge", help);
    for status in all {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} {n}");
    }
}

fn count_of(counts: &[(String, i64)], status: &str) -> i64 {
    counts
        .iter()
        .filter(|(s, _)| s == status)
        .map(|(_, n)| n)
        .sum()
}

/// A request id from the client is kept when it is a short token of safe
/// characters (so it can go into a log line and a header unchanged); anything else
/// is replaced by one of ours.
pub fn sane_request_id(value: &HeaderValue) -> Option<&str> {
    let id = value.to_str().ok()?;
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then_some(id)
}

fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The middleware on every route: the request id, one `info` line per request and
/// the HTTP figures. It logs the route template (never the path or the query,
/// where a sign-in code or a token could travel) and no header or body.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |p| p.as_str())
        .to_string();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(sane_request_id)
        .map_or_else(new_request_id, str::to_string);
    let mut response = next.run(req).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    metrics.observe(&method, &route, status, latency);
    tracing::info!(
        target: "spectask::http",
        method = %method,
        route = %route,
        status,
        // Microsecond precision: enough, and a short line.
        latency_ms = latency.as_micros() as f64 / 1000.0,
        request_id = %request_id,
        "request"
    );
    response
}

/// The server's figures, in the Prometheus text exposition format (0.0.4).
///
/// HTTP requests and their latency by method, route template and status; spec tasks, work sessions
/// and agent instances by status; the merge queue's depth (sessions in `merging`);
/// each running agent process's CPU and memory (its newest sample); WebSocket
/// clients; the newest event id and how far the WebSocket fan-out is behind it;
/// whether each background loop runs.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "The figures, in the Prometheus text exposition format 0.0.4",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.store.ops_snapshot().await?;
    let mut out = String::with_capacity(8 * 1024);
    state.metrics.render_http(&mut out);
    by_status(
        &mut out,
        "spectask_spec_tasks",
        "Spec tasks by status.",
        SpecTaskStatus::ALL.iter().map(|s| s.as_str()),
        &snapshot.spec_tasks,
    );
    by_status(
        &mut out,
        "spectask_work_sessions",
        "Work sessions by status (running, verifying, merging, ... are the live ones).",
        WorkSessionStatus::ALL.iter().map(|s| s.as_str()),
        &snapshot.work_sessions,
    );
    gauge(
        &mut out,
        "spectask_merge_queue_depth",
        "Work sessions in the merge queues (status merging: waiting for their task's merge lock or merging).",
        count_of(&snapshot.work_sessions, WorkSessionStatus::Merging.as_str()),
    );
    by_status(
        &mut out,
        "spectask_agent_instances",
        "Agent instances (one per spec task) by status.",
        AgentInstanceStatus::ALL.iter().map(|s| s.as_str()),
        &snapshot.agent_instances,
    );
    gauge(
        &mut out,
        "spectask_agent_processes_running",
        "Agent processes running (instances starting or ready).",
        count_of(
            &snapshot.agent_instances,
            AgentInstanceStatus::Starting.as_str(),
        ) + count_of(
            &snapshot.agent_instances,
            AgentInstanceStatus::Ready.as_str(),
        ),
    );
    family(
        &mut out,
        "spectask_agent_cpu_percent",
        "gauge",
        "CPU of each running agent process and its children, at its newest sample (100 = one core).",
    );
    for usage in &snapshot.agent_usage {
        let _ = writeln!(
            out,
            "spectask_agent_cpu_percent{{spec_task=\"{}\"}} {}",
            usage.spec_task_id, usage.cpu_percent
        );
    }
    family(
        &mut out,
        "spectask_agent_memory_bytes",
        "gauge",
        "Resident memory of each running agent process and its children, at its newest sample.",
    );
    for usage in &snapshot.agent_usage {
        let _ = writeln!(
            out,
            "spectask_agent_memory_bytes{{spec_task=\"{}\"}} {}",
            usage.spec_task_id, usage.rss_bytes
        );
    }
    gauge(
        &mut out,
        "spectask_websocket_clients",
        "WebSocket clients connected to GET /api/v1/events/ws on this replica.",
        state.hub.clients(),
    );
    gauge(
        &mut out,
        "spectask_last_event_id",
        "The newest event's id in the database (by any replica).",
        snapshot.last_event_id,
    );
    let published = state.hub.published();
    gauge(
        &mut out,
        "spectask_event_hub_last_event_id",
        "The newest event this replica's WebSocket fan-out has sent on.",
        published,
    );
    gauge(
        &mut out,
        "spectask_event_lag_events",
        "Events committed that this replica's WebSocket fan-out has not sent on yet.",
        (snapshot.last_event_id - published).max(0),
    );
    let (held, takeovers) = match &state.cluster {
        Some(c) => (state.store.fences().held().len() as u64, c.takeovers()),
        None => (0, 0),
    };
    gauge(
        &mut out,
        "spectask_leases_held",
        "Spec task leases this replica holds (0 when it is no cluster replica).",
        held,
    );
    family(
        &mut out,
        "spectask_lease_takeovers_total",
        "counter",
        "Spec tasks this replica took over from a replica whose lease had expired.",
    );
    let _ = writeln!(out, "spectask_lease_takeovers_total {takeovers}");
    family(
        &mut out,
        "spectask_loop_up",
        "gauge",
        "Whether each background loop of this replica runs (1), is not started here (0, background off) or stopped (0).",
    );
    for (name, loop_state) in state.loops.report() {
        let up = u8::from(loop_state == super::ready::LoopState::Running);
        let _ = writeln!(out, "spectask_loop_up{{loop=\"{name}\"}} {up}");
    }
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_short_safe_tokens() {
        let ok = |s: &'static str| sane_request_id(&HeaderValue::from_static(s)).is_some();
        assert!(ok("abc-123_x.y:z"));
        assert!(ok(&*"a".repeat(64).leak()));
        assert!(!ok(&*"a".repeat(65).leak()));
        assert!(!ok(""));
        assert!(!ok("has space"));
        assert!(!ok("quote\""));
        assert!(!ok("a=b"));
        assert_eq!(new_request_id().len(), 16);
    }

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.observe(&Method::GET, "/a", 200, Duration::from_micros(500));
        m.observe(&Method::GET, "/a", 200, Duration::from_millis(40));
        m.observe(&Method::GET, "/a", 200, Duration::from_secs(60));
        m.observe(
            &Method::from_bytes(b"BREW").unwrap(),
            "/q\"",
            418,
            Duration::ZERO,
        );
        let mut out = String::new();
        m.render_http(&mut out);
        assert!(out.contains(
            "spectask_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 3"
        ));
        assert!(out.contains("route=\"/a\",status=\"200\",le=\"0.001\"} 1"));
        assert!(out.contains("route=\"/a\",status=\"200\",le=\"0.05\"} 2"));
        assert!(out.contains("route=\"/a\",status=\"200\",le=\"30\"} 2"));
        assert!(out.contains("route=\"/a\",status=\"200\",le=\"+Inf\"} 3"));
        assert!(out.contains("{method=\"other\",route=\"/q\\\"\",status=\"418\"} 1"));
    }
}
