//! `spectask-test-agent`: a scripted Agent Client Protocol (ACP v1) agent.
//!
//! It speaks JSON-RPC 2.0 on stdin/stdout, one message per line, and logs to
//! stderr. What a turn does is written in the prompt itself (or in `--script`),
//! one command per line: `say hello`, `write notes.txt hi`, `hang`, ... See
//! README.md next to this file for the commands and flags.
//!
//! Layout: `rpc` owns stdout and matches responses to requests, `session` keeps
//! histories and cancel switches, `script` parses commands, `turn` runs them,
//! `mcp` is the MCP client behind `mcp TOOL JSON` and `mcp-list`.

mod mcp;
mod rpc;
mod script;
mod session;
mod turn;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::task::JoinSet;

use rpc::{Peer, RpcError, RpcResult};
use session::{Entry, Sessions};

const NAME: &str = "spectask-test-agent";
const VERSION: &str = "0.1.0";
const AUTH_METHOD: &str = "test-token";

#[derive(Default)]
struct Flags {
    /// Turns from `--script FILE`; the prompt text is then ignored.
    script: Option<Vec<String>>,
    state_dir: Option<PathBuf>,
    require_auth: bool,
    no_initialize: bool,
    garbage_on_start: bool,
    /// Advertise MCP over HTTP in `initialize` (`mcpCapabilities.http`).
    mcp_http: bool,
}

/// What the client said it can do in `initialize`.
#[derive(Default, Clone, Copy)]
pub struct ClientCaps {
    pub read_text_file: bool,
    pub write_text_file: bool,
    pub terminal: bool,
}

/// State shared by the reader loop and every running turn.
pub struct App {
    pub peer: Peer,
    pub sessions: Sessions,
    pub next_tool: AtomicU64,
    flags: Flags,
    caps: Mutex<ClientCaps>,
    authenticated: AtomicBool,
}

impl App {
    pub fn client_caps(&self) -> ClientCaps {
        *self.caps.lock().unwrap()
    }
}

fn usage() -> &'static str {
    "usage: spectask-test-agent [--script FILE] [--state-dir DIR] [--require-auth] \
     [--no-initialize] [--garbage-on-start] [--crash-on-start] [--mcp-http] [--version]"
}

/// Parses the command line; exits for `--version`, `--crash-on-start` and errors.
fn parse_flags() -> Flags {
    let mut flags = Flags::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{}", usage());
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--script" => {
                let file = value("--script");
                match std::fs::read_to_string(&file) {
                    Ok(text) => flags.script = Some(script::split_turns(&text)),
                    Err(e) => {
                        eprintln!("cannot read script {file}: {e}");
                        std::process::exit(2);
                    }
                }
            }
            "--state-dir" => flags.state_dir = Some(PathBuf::from(value("--state-dir"))),
            "--require-auth" => flags.require_auth = true,
            "--no-initialize" => flags.no_initialize = true,
            "--garbage-on-start" => flags.garbage_on_start = true,
            "--mcp-http" => flags.mcp_http = true,
            "--crash-on-start" => {
                eprintln!("crashed on start");
                std::process::exit(2);
            }
            "--version" => {
                println!("{NAME} {VERSION}");
                std::process::exit(0);
            }
            "--help" | "-h" => {
                eprintln!("{}", usage());
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other}\n{}", usage());
                std::process::exit(2);
            }
        }
    }
    flags
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = parse_flags();
    let sessions = Sessions::new(flags.state_dir.clone())?;
    let app = Arc::new(App {
        peer: Peer::start(),
        sessions,
        next_tool: AtomicU64::new(1),
        flags,
        caps: Mutex::new(ClientCaps::default()),
        authenticated: AtomicBool::new(false),
    });
    if app.flags.garbage_on_start {
        app.peer.raw("garbage before anything");
    }
    let mut turns = JoinSet::new();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        while turns.try_join_next().is_some() {}
        if app.flags.no_initialize || line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(message) => handle(&app, &mut turns, message),
            Err(e) => {
                eprintln!("[test-agent] not JSON ({e}): {line}");
                app.peer
                    .respond(Value::Null, Err(RpcError::new(-32700, "parse error")));
            }
        }
    }
    // The client is gone. Let running turns finish (their requests to the client
    // now fail), cancel those still running after a second, then exit.
    eprintln!("[test-agent] stdin closed, exiting");
    app.peer.close();
    let all_done = async { while turns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(1), all_done)
        .await
        .is_err()
    {
        app.sessions.cancel_all();
        let all_done = async { while turns.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), all_done).await;
    }
    app.peer.flush(Duration::from_secs(1)).await;
    mcp::kill_all();
    Ok(())
}

/// Dispatches one message from the client.
fn handle(app: &Arc<App>, turns: &mut JoinSet<()>, message: Value) {
    let method = message.get("method").and_then(Value::as_str);
    let id = message.get("id").cloned();
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    match (method, id) {
        // A response to one of our requests.
        (None, Some(_)) => app.peer.deliver(&message),
        (None, None) => eprintln!("[test-agent] ignoring message: {message}"),
        (Some("session/cancel"), None) => {
            if let Some(session_id) = params.get("sessionId").and_then(Value::as_str) {
                eprintln!("[test-agent] cancel {session_id}");
                app.sessions.cancel(session_id);
            }
        }
        (Some(method), None) => eprintln!("[test-agent] ignoring notification {method}"),
        (Some("session/prompt"), Some(id)) => prompt(app, turns, id, params),
        (Some(method), Some(id)) => {
            let result = request(app, method, &params);
            app.peer.respond(id, result);
        }
    }
}

/// Answers every request except `session/prompt`, which runs as its own task.
fn request(app: &App, method: &str, params: &Value) -> RpcResult {
    match method {
        "initialize" => {
            let caps = &params["clientCapabilities"];
            *app.caps.lock().unwrap() = ClientCaps {
                read_text_file: caps["fs"]["readTextFile"].as_bool().unwrap_or(false),
                write_text_file: caps["fs"]["writeTextFile"].as_bool().unwrap_or(false),
                terminal: caps["terminal"].as_bool().unwrap_or(false),
            };
            let auth_methods = if app.flags.require_auth {
                json!([{"id": AUTH_METHOD, "name": "Test token", "description": null}])
            } else {
                json!([])
            };
            Ok(json!({
                "protocolVersion": 1,
                "agentCapabilities": {
                    "loadSession": true,
                    "promptCapabilities": {},
                    "mcpCapabilities": {"http": app.flags.mcp_http, "sse": false},
                },
                "authMethods": auth_methods,
                "agentInfo": {"name": NAME, "version": VERSION},
            }))
        }
        "authenticate" => {
            let method_id = params["methodId"].as_str().unwrap_or("");
            if app.flags.require_auth && method_id != AUTH_METHOD {
                return Err(RpcError::invalid_params(format!(
                    "unknown auth method {method_id:?}"
                )));
            }
            app.authenticated
                .store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(json!({}))
        }
        "session/new" => {
            check_auth(app)?;
            let cwd = params["cwd"]
                .as_str()
                .ok_or_else(|| RpcError::invalid_params("cwd is required"))?;
            let servers = mcp::Server::parse_list(&params["mcpServers"]);
            let session_id = app.sessions.create(PathBuf::from(cwd), servers);
            app.sessions
                .note_mcp_servers(&session_id, &params["mcpServers"]);
            eprintln!("[test-agent] new session {session_id} in {cwd}");
            Ok(json!({"sessionId": session_id}))
        }
        "session/load" => {
            check_auth(app)?;
            let session_id = params["sessionId"].as_str().unwrap_or("");
            let cwd = params["cwd"].as_str().map(PathBuf::from);
            let history = app
                .sessions
                .load(
                    session_id,
                    cwd,
                    mcp::Server::parse_list(&params["mcpServers"]),
                )
                .ok_or_else(|| RpcError::new(-32002, "session not found"))?;
            app.sessions
                .note_mcp_servers(session_id, &params["mcpServers"]);
            for entry in history {
                let (kind, text) = match entry {
                    Entry::User { text } => ("user_message_chunk", text),
                    Entry::Agent { text } => ("agent_message_chunk", text),
                    Entry::Session { .. } => continue,
                };
                let update =
                    json!({"sessionUpdate": kind, "content": {"type": "text", "text": text}});
                app.peer.notify(
                    "session/update",
                    json!({"sessionId": session_id, "update": update}),
                );
            }
            Ok(Value::Null)
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

fn check_auth(app: &App) -> Result<(), RpcError> {
    let ok = !app.flags.require_auth || app.authenticated.load(std::sync::atomic::Ordering::SeqCst);
    if ok {
        Ok(())
    } else {
        Err(RpcError::new(-32000, "authentication required"))
    }
}

/// Starts a turn in its own task; the response is sent when the turn ends.
fn prompt(app: &Arc<App>, turns: &mut JoinSet<()>, id: Value, params: Value) {
    let session_id = params["sessionId"].as_str().unwrap_or("").to_string();
    let prompt_text = params["prompt"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "text")
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let Some(start) = app.sessions.begin_turn(&session_id, &prompt_text) else {
        app.peer
            .respond(id, Err(RpcError::new(-32002, "session not found")));
        return;
    };
    let script_text = match &app.flags.script {
        Some(turns) => turns[start.index.min(turns.len() - 1)].clone(),
        None => prompt_text.clone(),
    };
    let app = app.clone();
    turns.spawn(async move {
        let mut turn = turn::Turn {
            app: app.clone(),
            session_id: session_id.clone(),
            cwd: start.cwd,
            cancel: start.cancel,
            exit_after: false,
        };
        let stop_reason = turn.run(&script_text, &prompt_text).await;
        app.sessions.end_turn(&session_id, start.turn);
        eprintln!(
            "[test-agent] {session_id} turn {} ends: {stop_reason}",
            start.turn
        );
        app.peer.respond(id, Ok(json!({"stopReason": stop_reason})));
        if turn.exit_after {
            app.peer.flush(Duration::from_secs(5)).await;
            eprintln!("[test-agent] exiting after the turn, as asked");
            mcp::kill_all();
            std::process::exit(0);
        }
    });
}
