//! Agent tools over MCP: the window an agent has onto spectask's coordination from
//! inside its session (see `tools.rs` for what each tool does).
//!
//! Two transports reach the same tools:
//! - Streamable HTTP at `/mcp` on the server, for agents that advertise
//!   `mcpCapabilities.http`; the session token is the bearer credential;
//! - stdio, for every other agent: `spectask mcp` (see `bridge.rs`), started by the
//!   agent with the server URL and the session token in its environment, relays
//!   each message to `/mcp`.
//!
//! Each work session gets its own token (`servers.rs`), valid only for its own spec
//! task while the session has not ended; it opens `/mcp` and nothing else (the REST
//! API does not know it). The official SDK (`rmcp`, pinned exactly) is used only in
//! this module.

pub mod bridge;
pub mod servers;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;

use crate::auth::hash_token;
use crate::store::{SessionGrant, Store};
pub use tools::Tools;

/// The environment variables `spectask mcp` reads.
pub const URL_ENV: &str = "SPECTASK_URL";
pub const TOKEN_ENV: &str = "SPECTASK_SESSION_TOKEN";
/// The path of the Streamable HTTP endpoint.
pub const PATH: &str = "/mcp";
/// The name the server gives itself in `mcpServers` and `initialize`.
pub const SERVER_NAME: &str = "spectask";

#[derive(Clone)]
struct Handler {
    tools: Tools,
    list: Arc<Vec<Tool>>,
}

fn tool_list() -> Vec<Tool> {
    tools::definitions()
        .into_iter()
        .map(|d| {
            let schema: JsonObject = match d.schema {
                Value::Object(map) => map,
                _ => JsonObject::new(),
            };
            Tool::new(d.name, d.description, Arc::new(schema))
        })
        .collect()
}

impl rmcp::ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "spectask coordinates the sessions of this spec task. Call spectask_context first to see your task and the plan.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, rmcp::ErrorData> {
        Ok(ListToolsResult::with_all_items(self.list.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, rmcp::ErrorData> {
        // The grant the HTTP layer put on the request (see `authorize`).
        let grant = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<SessionGrant>())
            .cloned()
            .ok_or_else(|| rmcp::ErrorData::invalid_request("no session credential", None))?;
        let arguments = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        let result = match self.tools.call(&grant, &request.name, arguments).await {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(text) => CallToolResult::error(vec![ContentBlock::text(text)]),
        };
        Ok(result.into())
    }
}

/// Checks the session token on every request to `/mcp`, and hands its grant on.
async fn authorize(State(store): State<Arc<dyn Store>>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return unauthorized();
    };
    match store.find_session_token(&hash_token(token)).await {
        Ok(Some(grant)) => {
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
        Ok(None) => unauthorized(),
        Err(e) => {
            tracing::error!(error = %e, "checking a session token");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", "Bearer")],
        "a session token of a running work session is required",
    )
        .into_response()
}

/// The `/mcp` route: Streamable HTTP, stateless (each request stands alone, so a
/// restarted server or another replica serves the next one), answering with JSON.
pub fn router<S: Clone + Send + Sync + 'static>(tools: Tools) -> Router<S> {
    let store = tools.store.clone();
    let handler = Handler {
        tools,
        list: Arc::new(tool_list()),
    };
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            // The bearer token is the protection; the server may be reached by any
            // name its operator gives it.
            .disable_allowed_hosts(),
    );
    Router::new()
        .nest_service(PATH, service)
        .layer(axum::middleware::from_fn_with_state(store, authorize))
}
