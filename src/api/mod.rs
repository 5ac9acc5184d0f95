//! The HTTP API under `/api/v1`, with its OpenAPI document generated from the
//! handlers' annotations. Every route but `/healthz`, `/readyz` and sign-in requires
//! a bearer token or the browser session cookie; every other path serves the
//! dashboard. Every request, on any route, goes through `metrics::observe`.

mod agents;
mod auth;
mod browser;
pub mod cluster;
mod document;
mod error;
mod events;
mod extract;
mod implementation;
pub mod metrics;
mod notifications;
mod projects;
pub mod ready;
mod reviews;
mod sessions;
mod spec_tasks;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Caller, SESSION_COOKIE};
pub use browser::{SignInLink, make_link};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use events::set_long_poll_limit;

use crate::agents::manager::AgentManager;
use crate::orchestrator::implementation::Implementer;
use crate::orchestrator::review::Reviewer;
use crate::store::Store;

/// The largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub agents: Arc<AgentManager>,
    pub reviewer: Arc<Reviewer>,
    pub implementer: Arc<Implementer>,
    /// `<data-dir>/tasks`: task and session worktrees, read for progress.
    pub tasks_dir: std::path::PathBuf,
    pub web: crate::config::WebSettings,
    /// The tail of the event table every WebSocket listens to.
    pub hub: Arc<ws::EventHub>,
    /// Becomes `true` when the server shuts down: open WebSockets close.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// HTTP figures, fed by the request middleware, read by `/api/v1/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The background loops `App` started, for `/readyz` and the metrics.
    pub loops: Arc<ready::Loops>,
    /// This server as a cluster replica (`serve --cluster`), else `None`.
    pub cluster: Option<Arc<crate::orchestrator::cluster::Cluster>>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "spectask", description = "Spec-driven, multi-session AI coding: the REST API."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody, ErrorDetail, spec_tasks::Action, implementation::Decision))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every documented `/api/v1` route, with its OpenAPI operation.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(projects::list, projects::create))
        .routes(routes!(projects::get, projects::update))
        .routes(routes!(spec_tasks::list, spec_tasks::create))
        .routes(routes!(spec_tasks::get, spec_tasks::update))
        .routes(routes!(spec_tasks::action))
        .routes(routes!(sessions::list, implementation::spawn))
        .routes(routes!(sessions::get))
        .routes(routes!(sessions::changes))
        .routes(routes!(
            sessions::list_coordination,
            sessions::post_coordination
        ))
        .routes(routes!(sessions::acknowledge))
        .routes(routes!(sessions::answer))
        .routes(routes!(implementation::open_thread))
        .routes(routes!(sessions::list_state))
        .routes(routes!(sessions::get_state, sessions::put_state))
        .routes(routes!(events::list))
        .routes(routes!(events::list_tokens, events::create_token))
        .routes(routes!(events::revoke_token))
        .routes(routes!(agents::get_instance))
        .routes(routes!(cluster::status))
        .routes(routes!(agents::stop_instance))
        .routes(routes!(agents::restart_instance))
        .routes(routes!(agents::stop_all))
        .routes(routes!(agents::samples))
        .routes(routes!(agents::list_threads))
        .routes(routes!(agents::get_thread))
        .routes(routes!(agents::transcript))
        .routes(routes!(agents::list_permissions))
        .routes(routes!(agents::answer_permission))
        .routes(routes!(reviews::list_versions))
        .routes(routes!(reviews::get_version))
        .routes(routes!(reviews::add_comment))
        .routes(routes!(reviews::resolve_comment))
        .routes(routes!(reviews::import_spec))
        .routes(routes!(implementation::list_tasks))
        .routes(routes!(implementation::decide))
        .routes(routes!(implementation::progress))
        .routes(routes!(implementation::report))
        .routes(routes!(implementation::decide_session))
        .routes(routes!(implementation::overview))
        .routes(routes!(ws::events_ws))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::list_webhooks, notifications::create))
        .routes(routes!(notifications::delete))
        .routes(routes!(notifications::deliveries))
        .routes(routes!(browser::session))
        .routes(routes!(browser::sign_out))
        .routes(routes!(browser::create_link))
        .routes(routes!(metrics::metrics))
}

/// The routes that need no credential of their own (the request carries one).
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(browser::sign_in))
}

/// The routes' operations, with their paths under `/api/v1`: the document
/// `GET /api/v1/openapi.json` serves and `spectask openapi` prints.
fn finish_doc(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    doc.paths.paths = doc
        .paths
        .paths
        .into_iter()
        .map(|(path, item)| (format!("/api/v1{path}"), item))
        .collect();
    document::ErrorAnswers.modify(&mut doc);
    doc
}

/// The OpenAPI document of the whole API, built without a server, as JSON with its
/// keys sorted: with the rules utoipa has no words for (`document::rules`).
pub fn openapi() -> serde_json::Value {
    let (_, doc) = api_routes().merge(public_routes()).split_for_parts();
    openapi_value(finish_doc(doc))
}

fn openapi_value(doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    document::rules(&mut value);
    sort_keys(value)
}

/// The OpenAPI document as pretty JSON with its keys in a stable (sorted) order.
pub fn openapi_json() -> String {
    pretty(&openapi())
}

fn openapi_json_of(doc: utoipa::openapi::OpenApi) -> String {
    pretty(&openapi_value(doc))
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serializes");
    text.push('\n');
    text
}

fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// The whole HTTP surface: `/healthz`, and `/api/v1/*` behind the token check.
pub fn router(state: AppState) -> Router {
    let (public, public_doc) = public_routes().split_for_parts();
    let (api, mut doc) = api_routes().split_for_parts();
    doc.merge(public_doc);
    let doc: Arc<str> = openapi_json_of(finish_doc(doc)).into();
    let api = api
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        // After the layer: sign-in carries its credential in its body.
        .merge(public);
    let tools = crate::mcp::Tools {
        store: state.store.clone(),
        implementer: state.implementer.clone(),
        tasks_dir: state.tasks_dir.clone(),
        shutdown: state.shutdown.clone(),
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready::readyz))
        .nest("/api/v1", api)
        // Agents' tools, with their session tokens (not the API's).
        .merge(crate::mcp::router(tools))
        .fallback(crate::web::serve)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // `Router::layer` wraps each route after routing, so the middleware sees the
        // matched route template; outermost, so it also times and counts the 401s
        // of the token check.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// The page size a list route uses when the client names none, and the most it allows.
pub(crate) fn page_limit(requested: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::Validation(format!(
            "limit must be between 1 and {max}, not {n}"
        ))),
    }
}
