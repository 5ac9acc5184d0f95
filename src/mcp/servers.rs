//! The `mcpServers` a work session's thread is opened with: spectask's own tool
//! server, reached over HTTP or through `spectask mcp`, carrying a token issued
//! for that session alone.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::{PATH, SERVER_NAME, TOKEN_ENV, URL_ENV};
use crate::agents::profile::McpTransport;
use crate::auth::{generate_token, hash_token};
use crate::domain::ids::*;
use crate::store::{Store, StoreError};

/// Where agents reach the server: known once it listens.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server's base URL (`http://127.0.0.1:7420`).
    pub url: String,
    /// The `spectask` executable, for the stdio transport.
    pub exe: PathBuf,
}

/// Set by the server when it starts listening; read when a thread opens.
pub type SharedEndpoint = Arc<OnceLock<Endpoint>>;

/// Issues a new token for a session (revoking its older ones) and returns the
/// `mcpServers` list for `session/new` or `session/load`.
pub async fn for_session(
    store: &dyn Store,
    endpoint: &Endpoint,
    transport: McpTransport,
    agent_speaks_http: bool,
    work_session_id: WorkSessionId,
) -> Result<Value, StoreError> {
    let http = match transport {
        McpTransport::Off => return Ok(json!([])),
        McpTransport::Http => true,
        McpTransport::Stdio => false,
        McpTransport::Auto => agent_speaks_http,
    };
    let token = generate_token();
    store
        .issue_session_token(
            work_session_id,
            &hash_token(&token),
            if http { "http" } else { "stdio" },
            "system",
        )
        .await?;
    let base = endpoint.url.trim_end_matches('/');
    Ok(if http {
        json!([{
            "type": "http",
            "name": SERVER_NAME,
            "url": format!("{base}{PATH}"),
            "headers": [{"name": "Authorization", "value": format!("Bearer {token}")}],
        }])
    } else {
        json!([{
            "name": SERVER_NAME,
            "command": endpoint.exe.display().to_string(),
            "args": ["mcp"],
            "env": [
                {"name": URL_ENV, "value": base},
                {"name": TOKEN_ENV, "value": token},
            ],
        }])
    })
}

/// Whether an agent's `initialize` capabilities offer MCP over HTTP.
pub fn speaks_http(capabilities: &Value) -> bool {
    capabilities
        .pointer("/mcpCapabilities/http")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}
