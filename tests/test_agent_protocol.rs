//! The scripted ACP test agent (`spectask-test-agent`), driven over raw JSON lines
//! by a tiny client in this file: it sends requests, answers the agent's fs,
//! terminal and permission requests with canned answers, and collects the
//! `session/update` notifications. Every wait has a timeout; nothing sleeps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
/// Generous: the machine may be busy building.
const WAIT: Duration = Duration::from_secs(20);

/// How the client answers a request from the agent: `None` leaves it unanswered.
type Answer = Box<dyn FnMut(&str, &Value) -> Option<Result<Value, (i64, String)>> + Send>;

/// The canned answers: everything succeeds, permission is allowed.
fn canned(method: &str, _params: &Value) -> Option<Result<Value, (i64, String)>> {
    Some(Ok(match method {
        "fs/read_text_file" => json!({"content": "canned content"}),
        "terminal/create" => json!({"terminalId": "term-1"}),
        "terminal/wait_for_exit" => json!({"exitCode": 0}),
        "terminal/output" => json!({"output": "  canned output\n", "truncated": false}),
        "terminal/kill" | "terminal/release" => json!({}),
        "session/request_permission" => {
            json!({"outcome": {"outcome": "selected", "optionId": "allow"}})
        }
        _ => Value::Null,
    }))
}

struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    /// The task collecting stderr; done once the process has exited.
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
    next_id: u64,
    responses: HashMap<u64, Value>,
    /// Ids of responses, in the order they arrived.
    response_order: Vec<u64>,
    /// Params of every `session/update`.
    updates: Vec<Value>,
    /// Every request the agent sent.
    requests: Vec<Value>,
    /// Lines that were not JSON.
    garbage: Vec<String>,
    answer: Answer,
}

impl Agent {
    fn spawn(args: &[&str]) -> Agent {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the test agent");
        let (tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = stderr.clone();
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr_reader = tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                let mut text = collected.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Agent {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
            next_id: 1,
            responses: HashMap::new(),
            response_order: Vec::new(),
            updates: Vec::new(),
            requests: Vec::new(),
            garbage: Vec::new(),
            answer: Box::new(canned),
        }
    }

    /// Spawns and initializes with every client capability.
    async fn start(args: &[&str]) -> Agent {
        let mut agent = Agent::spawn(args);
        agent.initialize(true).await;
        agent
    }

    async fn initialize(&mut self, capable: bool) -> Value {
        let params = json!({
            "protocolVersion": 1,
            "clientCapabilities": {
                "fs": {"readTextFile": capable, "writeTextFile": capable},
                "terminal": capable,
            },
            "clientInfo": {"name": "test", "version": "0"},
        });
        self.call("initialize", params).await
    }

    async fn write(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        let line = format!("{message}\n");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    async fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.write(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    async fn notify(&mut self, method: &str, params: Value) {
        self.write(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Reads and handles one line; `false` at end of output.
    async fn pump(&mut self, limit: Duration) -> bool {
        let line = match timeout(limit, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => return false,
            Err(_) => panic!(
                "no output from the agent within {limit:?}; stderr:\n{}",
                self.stderr()
            ),
        };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            self.garbage.push(line);
            return true;
        };
        match (
            message.get("method").and_then(Value::as_str),
            message.get("id"),
        ) {
            (Some(method), Some(id)) => {
                let id = id.clone();
                self.requests.push(message.clone());
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                let reply = match (self.answer)(method, &params) {
                    Some(Ok(result)) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Some(Err((code, text))) => json!({
                        "jsonrpc": "2.0", "id": id, "error": {"code": code, "message": text},
                    }),
                    None => return true,
                };
                self.write(reply).await;
            }
            (Some("session/update"), None) => self.updates.push(message["params"].clone()),
            (Some(_), None) => {}
            (None, _) => {
                let id = message["id"].as_u64().expect("response with a numeric id");
                self.response_order.push(id);
                self.responses.insert(id, message);
            }
        }
        true
    }

    /// Handles output until `done` holds.
    async fn until(&mut self, limit: Duration, done: impl Fn(&Agent) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                self.pump(left).await,
                "agent output ended; stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// The whole response message to request `id`.
    async fn response(&mut self, id: u64) -> Value {
        self.response_within(id, WAIT).await
    }

    async fn response_within(&mut self, id: u64, limit: Duration) -> Value {
        self.until(limit, |a| a.responses.contains_key(&id)).await;
        self.responses[&id].clone()
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        let response = self.response(id).await;
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    async fn new_session(&mut self, cwd: &Path) -> String {
        let result = self
            .call("session/new", json!({"cwd": cwd, "mcpServers": []}))
            .await;
        result["sessionId"].as_str().unwrap().to_string()
    }

    async fn send_prompt(&mut self, session: &str, text: &str) -> u64 {
        let params = json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]});
        self.send("session/prompt", params).await
    }

    /// Runs one turn and returns its stop reason.
    async fn prompt(&mut self, session: &str, text: &str) -> String {
        let id = self.send_prompt(session, text).await;
        let response = self.response(id).await;
        response["result"]["stopReason"]
            .as_str()
            .unwrap_or_else(|| panic!("prompt failed: {response}"))
            .to_string()
    }

    /// The updates of one kind for one session, in order.
    fn updates_of(&self, session: &str, kind: &str) -> Vec<Value> {
        self.updates
            .iter()
            .filter(|p| p["sessionId"] == session && p["update"]["sessionUpdate"] == kind)
            .map(|p| p["update"].clone())
            .collect()
    }

    fn texts(&self, session: &str, kind: &str) -> Vec<String> {
        self.updates_of(session, kind)
            .iter()
            .map(|u| u["content"]["text"].as_str().unwrap().to_string())
            .collect()
    }

    fn messages(&self, session: &str) -> Vec<String> {
        self.texts(session, "agent_message_chunk")
    }

    fn requests_of(&self, method: &str) -> Vec<Value> {
        self.requests
            .iter()
            .filter(|r| r["method"] == method)
            .map(|r| r["params"].clone())
            .collect()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit and returns its exit code.
    async fn exit_code(&mut self) -> i32 {
        let status = timeout(WAIT, self.child.wait())
            .await
            .expect("the agent exits")
            .unwrap();
        if let Some(reader) = self.stderr_reader.take() {
            timeout(WAIT, reader).await.expect("stderr closes").unwrap();
        }
        status.code().expect("exited with a code, not a signal")
    }

    /// Closes stdin, as a client going away does, and waits for the exit.
    async fn close(&mut self) -> i32 {
        self.stdin.take();
        self.exit_code().await
    }
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("spectask-test-agent-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn abs(dir: &TempDir, relative: &str) -> String {
    dir.0.join(relative).to_str().unwrap().to_string()
}

#[tokio::test]
async fn initialize_describes_the_agent_and_unknown_requests_fail() {
    let mut agent = Agent::spawn(&[]);
    let init = agent.initialize(true).await;
    assert_eq!(init["protocolVersion"], 1);
    assert_eq!(init["agentCapabilities"]["loadSession"], true);
    assert_eq!(init["authMethods"], json!([]));
    assert_eq!(init["agentInfo"]["name"], "spectask-test-agent");

    agent.notify("some/notification", json!({"x": 1})).await;
    let id = agent
        .send("session/set_mode", json!({"sessionId": "sess-1"}))
        .await;
    assert_eq!(agent.response(id).await["error"]["code"], -32601);
    let id = agent.send_prompt("sess-404", "say hi").await;
    assert_eq!(agent.response(id).await["error"]["code"], -32002);

    let dir = TempDir::new();
    let session = agent.new_session(&dir.0).await;
    assert_eq!(session, "sess-1");
    assert_eq!(agent.prompt(&session, "hello there").await, "end_turn");
    assert_eq!(agent.messages(&session), ["echo: hello there"]);
    assert!(agent.garbage.is_empty());
    assert_eq!(agent.close().await, 0);
}

#[tokio::test]
async fn turns_of_two_sessions_interleave() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let a = agent.new_session(&dir.0).await;
    let b = agent.new_session(&dir.0).await;
    assert_ne!(a, b);
    let pa = agent.send_prompt(&a, "sleep 300\nsay a-done").await;
    let pb = agent.send_prompt(&b, "say b-done").await;
    assert_eq!(agent.response(pa).await["result"]["stopReason"], "end_turn");
    assert_eq!(agent.response(pb).await["result"]["stopReason"], "end_turn");
    assert_eq!(agent.response_order, [1, 2, 3, pb, pa], "b answers first");
    assert_eq!(agent.messages(&a), ["a-done"]);
    assert_eq!(agent.messages(&b), ["b-done"]);
}

#[tokio::test]
async fn display_commands_produce_their_updates() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    let script = "# a comment\n\
                  say first\\nsecond\n\
                  stream 4 abcdefghij\n\
                  think pondering\n\
                  plan Read | Write |  Test\n\
                  tool Look around\n\
                  usage 1200 200000 0.25\n\
                  usage 10 100\n\
                  frobnicate now\n\
                  sleep nope";
    assert_eq!(agent.prompt(&s, script).await, "end_turn");

    let messages = agent.messages(&s);
    assert_eq!(messages[0], "first\nsecond");
    assert_eq!(messages[1..5].concat(), "abcdefghij");
    assert!(
        messages[1..5].iter().all(|m| (2..=3).contains(&m.len())),
        "{messages:?}"
    );
    assert_eq!(messages[5], "error: unknown command frobnicate");
    assert!(messages[6].starts_with("error: sleep"), "{messages:?}");
    assert_eq!(messages.len(), 7);

    assert_eq!(agent.texts(&s, "agent_thought_chunk"), ["pondering"]);
    let plan = agent.updates_of(&s, "plan");
    assert_eq!(
        plan[0]["entries"],
        json!([
            {"content": "Read", "priority": "medium", "status": "in_progress"},
            {"content": "Write", "priority": "medium", "status": "pending"},
            {"content": "Test", "priority": "medium", "status": "pending"},
        ])
    );
    let call = &agent.updates_of(&s, "tool_call")[0];
    assert_eq!(call["title"], "Look around");
    assert_eq!(call["kind"], "other");
    assert_eq!(call["status"], "in_progress");
    assert!(call["toolCallId"].as_str().unwrap().starts_with("tool-"));
    let done = &agent.updates_of(&s, "tool_call_update")[0];
    assert_eq!(done["toolCallId"], call["toolCallId"]);
    assert_eq!(done["status"], "completed");
    let usage = agent.updates_of(&s, "usage_update");
    assert_eq!(usage[0]["used"], 1200);
    assert_eq!(usage[0]["size"], 200000);
    assert_eq!(usage[0]["cost"], json!({"amount": 0.25, "currency": "USD"}));
    assert_eq!(usage[1]["used"], 10);
    assert!(usage[1].get("cost").is_none());
}

#[tokio::test]
async fn client_requests_carry_absolute_paths_and_answers_are_reported() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let mut asked = 0;
    agent.answer = Box::new(move |method, params| match method {
        "fs/write_text_file" if params["path"].as_str().unwrap().starts_with("/etc") => {
            Some(Err((-32000, "outside the worktree".to_string())))
        }
        "terminal/create" if params["command"] == "nope" => {
            Some(Err((-32000, "no such command".to_string())))
        }
        "session/request_permission" => {
            asked += 1;
            let option = if asked == 1 { "allow" } else { "reject" };
            Some(Ok(
                json!({"outcome": {"outcome": "selected", "optionId": option}}),
            ))
        }
        _ => canned(method, params),
    });
    let s = agent.new_session(&dir.0).await;
    let script = "write notes/a.txt hello\\nworld\n\
                  write /etc/escape.txt nope\n\
                  read notes/a.txt\n\
                  run echo hi there\n\
                  run nope\n\
                  ask Delete everything?\n\
                  ask Again?\n\
                  say done";
    assert_eq!(agent.prompt(&s, script).await, "end_turn");
    assert_eq!(
        agent.messages(&s),
        [
            "wrote notes/a.txt",
            "error: write /etc/escape.txt: outside the worktree",
            "read notes/a.txt: canned content",
            "ran echo: exit 0: canned output",
            "error: run nope: no such command",
            "permission: allow",
            "permission: reject",
            "done",
        ]
    );

    let writes = agent.requests_of("fs/write_text_file");
    assert_eq!(
        writes[0],
        json!({"sessionId": s, "path": abs(&dir, "notes/a.txt"), "content": "hello\nworld"})
    );
    assert_eq!(writes[1]["path"], "/etc/escape.txt");
    let reads = agent.requests_of("fs/read_text_file");
    assert_eq!(
        reads,
        [json!({"sessionId": s, "path": abs(&dir, "notes/a.txt")})]
    );

    // The write is an `edit` tool call naming its file, with the ACP diff (a new
    // file: no oldText).
    let edit = &agent.updates_of(&s, "tool_call")[0];
    assert_eq!(edit["kind"], "edit");
    let a = abs(&dir, "notes/a.txt");
    assert_eq!(edit["locations"], json!([{"path": a}]));
    assert_eq!(
        edit["content"],
        json!([{"type": "diff", "path": a, "oldText": null, "newText": "hello\nworld"}])
    );
    // The run's completed update carries what the command printed.
    let ran = agent
        .updates_of(&s, "tool_call_update")
        .into_iter()
        .find(|u| u["status"] == "completed" && u["content"].is_array())
        .expect("a completed run with content");
    assert_eq!(
        ran["content"][0]["content"]["text"],
        "ran echo: exit 0: canned output"
    );

    let create = &agent.requests_of("terminal/create")[0];
    assert_eq!(create["command"], "echo");
    assert_eq!(create["args"], json!(["hi", "there"]));
    assert_eq!(create["cwd"], dir.0.to_str().unwrap());
    let terminal = json!({"sessionId": s, "terminalId": "term-1"});
    for method in [
        "terminal/wait_for_exit",
        "terminal/output",
        "terminal/release",
    ] {
        assert_eq!(
            agent.requests_of(method),
            std::slice::from_ref(&terminal),
            "{method}"
        );
    }

    let permission = &agent.requests_of("session/request_permission")[0];
    assert_eq!(permission["toolCall"]["title"], "Delete everything?");
    assert_eq!(permission["options"][0]["optionId"], "allow");
    assert_eq!(permission["options"][0]["kind"], "allow_once");
    assert_eq!(permission["options"][1]["optionId"], "reject");
    assert_eq!(permission["options"][1]["kind"], "reject_once");
    let failed: Vec<_> = agent
        .updates_of(&s, "tool_call_update")
        .into_iter()
        .filter(|u| u["status"] == "failed")
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "the refused write, the failed run, the rejection"
    );
}

#[tokio::test]
async fn missing_client_capabilities_are_respected() {
    let dir = TempDir::new();
    let mut agent = Agent::spawn(&[]);
    agent.initialize(false).await;
    let s = agent.new_session(&dir.0).await;
    agent.prompt(&s, "write a.txt x\nread a.txt\nrun ls").await;
    assert!(agent.requests.is_empty(), "{:?}", agent.requests);
    let messages = agent.messages(&s);
    assert!(
        messages.iter().all(|m| m.starts_with("error: ")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn direct_writes_bypass_the_client() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    let script =
        "write-direct sub/d.txt one\\n\nappend-direct sub/d.txt two\nwrite-direct sub/d.txt/x no";
    agent.prompt(&s, script).await;
    assert!(agent.requests.is_empty());
    let messages = agent.messages(&s);
    assert_eq!(
        messages[..2],
        ["wrote-direct sub/d.txt", "wrote-direct sub/d.txt"]
    );
    assert!(
        messages[2].starts_with("error: write-direct sub/d.txt/x: "),
        "{messages:?}"
    );
    let written = std::fs::read_to_string(dir.0.join("sub/d.txt")).unwrap();
    assert_eq!(written, "one\ntwo");
}

#[tokio::test]
async fn cancel_ends_hanging_sleeping_and_waiting_turns_promptly() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    agent.answer = Box::new(|method, params| match method {
        "session/request_permission" | "fs/write_text_file" => None,
        _ => canned(method, params),
    });
    let s = agent.new_session(&dir.0).await;
    let turns = [
        ("say started\nhang\nsay never", "started"),
        ("say started\nsleep 60000\nsay never", "started"),
        ("ask May I?\nsay never", "request"),
        ("write a.txt x\nsay never", "request"),
    ];
    for (n, (script, wait_for)) in turns.into_iter().enumerate() {
        let id = agent.send_prompt(&s, script).await;
        let seen = agent.requests.len();
        if wait_for == "request" {
            agent.until(WAIT, |a| a.requests.len() > seen).await;
        } else {
            let before = agent.messages(&s).len();
            agent.until(WAIT, |a| a.messages(&s).len() > before).await;
        }
        agent
            .notify("session/cancel", json!({"sessionId": s}))
            .await;
        let response = agent.response_within(id, Duration::from_secs(1)).await;
        assert_eq!(
            response["result"]["stopReason"], "cancelled",
            "turn {n}: {script}"
        );
    }
    let messages = agent.messages(&s);
    assert!(
        messages.contains(&"permission: cancelled".to_string()),
        "{messages:?}"
    );
    assert!(!messages.contains(&"never".to_string()), "{messages:?}");

    // The cancel was for those turns only.
    assert_eq!(agent.prompt(&s, "say after").await, "end_turn");
    assert_eq!(agent.messages(&s).last().unwrap(), "after");
}

#[tokio::test]
async fn crash_exits_the_process_with_the_code() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    agent
        .send_prompt(&s, "say going down\ncrash 7\nsay never")
        .await;
    assert_eq!(agent.exit_code().await, 7);
    assert!(
        agent.stderr().contains("crashing as asked"),
        "{}",
        agent.stderr()
    );

    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    agent.send_prompt(&s, "crash").await;
    assert_eq!(agent.exit_code().await, 3);

    let mut agent = Agent::spawn(&["--crash-on-start"]);
    assert_eq!(agent.exit_code().await, 2);
    assert!(agent.stderr().contains("crashed on start"));
}

#[tokio::test]
async fn exit_after_turn_answers_first() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    assert_eq!(
        agent.prompt(&s, "say bye\nexit-after-turn").await,
        "end_turn"
    );
    assert_eq!(agent.exit_code().await, 0);
    assert_eq!(agent.messages(&s), ["bye"]);
}

#[tokio::test]
async fn script_file_turns_replace_the_prompt() {
    let dir = TempDir::new();
    let script = dir.0.join("script.txt");
    std::fs::write(
        &script,
        "# turn one\nsay first\n---\nsay second\nthink again",
    )
    .unwrap();
    let mut agent = Agent::start(&["--script", script.to_str().unwrap()]).await;
    let s = agent.new_session(&dir.0).await;
    for _ in 0..3 {
        assert_eq!(agent.prompt(&s, "say ignored").await, "end_turn");
    }
    assert_eq!(agent.messages(&s), ["first", "second", "second"]);
    assert_eq!(agent.texts(&s, "agent_thought_chunk"), ["again", "again"]);
    // Another session starts at turn one.
    let t = agent.new_session(&dir.0).await;
    agent.prompt(&t, "whatever").await;
    assert_eq!(agent.messages(&t), ["first"]);
}

#[tokio::test]
async fn require_auth_refuses_sessions_until_authenticated() {
    let dir = TempDir::new();
    let mut agent = Agent::spawn(&["--require-auth"]);
    let init = agent.initialize(true).await;
    assert_eq!(init["authMethods"][0]["id"], "test-token");
    let params = json!({"cwd": dir.0, "mcpServers": []});
    let id = agent.send("session/new", params.clone()).await;
    let refused = agent.response(id).await;
    assert_eq!(refused["error"]["code"], -32000);
    assert_eq!(refused["error"]["message"], "authentication required");
    let id = agent
        .send("authenticate", json!({"methodId": "wrong"}))
        .await;
    assert!(agent.response(id).await.get("error").is_some());
    assert_eq!(
        agent
            .call("authenticate", json!({"methodId": "test-token"}))
            .await,
        json!({})
    );
    assert_eq!(
        agent.call("session/new", params).await["sessionId"],
        "sess-1"
    );
}

#[tokio::test]
async fn load_replays_history_also_in_a_new_process() {
    let dir = TempDir::new();
    let state = dir.0.join("state");
    let state_arg = state.to_str().unwrap();
    let mut agent = Agent::start(&["--state-dir", state_arg]).await;
    let s = agent.new_session(&dir.0).await;
    agent.prompt(&s, "say hello").await;
    agent.prompt(&s, "stream 2 abcd").await;
    let load = json!({"sessionId": s, "cwd": dir.0, "mcpServers": []});
    let expected = [
        ("user_message_chunk", "say hello"),
        ("agent_message_chunk", "hello"),
        ("user_message_chunk", "stream 2 abcd"),
        ("agent_message_chunk", "ab"),
        ("agent_message_chunk", "cd"),
    ];
    let replay = |agent: &Agent, from: usize| -> Vec<(String, String)> {
        agent.updates[from..]
            .iter()
            .map(|p| {
                assert_eq!(p["sessionId"], s.as_str());
                let u = &p["update"];
                (
                    u["sessionUpdate"].as_str().unwrap().to_string(),
                    u["content"]["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, t)| (k.to_string(), t.to_string()))
        .collect();

    let from = agent.updates.len();
    assert_eq!(agent.call("session/load", load.clone()).await, Value::Null);
    assert_eq!(replay(&agent, from), expected);
    assert_eq!(agent.close().await, 0);

    let mut agent = Agent::start(&["--state-dir", state_arg]).await;
    let id = agent
        .send(
            "session/load",
            json!({"sessionId": "sess-99", "cwd": dir.0, "mcpServers": []}),
        )
        .await;
    assert_eq!(agent.response(id).await["error"]["code"], -32002);
    assert_eq!(agent.call("session/load", load).await, Value::Null);
    assert_eq!(replay(&agent, 0), expected);
    assert_eq!(
        agent.new_session(&dir.0).await,
        "sess-2",
        "ids do not collide"
    );
    agent.prompt(&s, "say again").await;
    assert_eq!(agent.messages(&s).last().unwrap(), "again");
}

#[tokio::test]
async fn load_without_state_dir_knows_only_this_process() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    agent.prompt(&s, "say kept").await;
    let from = agent.updates.len();
    agent
        .call(
            "session/load",
            json!({"sessionId": s, "cwd": dir.0, "mcpServers": []}),
        )
        .await;
    assert_eq!(agent.texts(&s, "user_message_chunk"), ["say kept"]);
    assert_eq!(agent.updates.len() - from, 2);
}

#[tokio::test]
async fn garbage_flags_and_no_initialize() {
    let dir = TempDir::new();
    let mut agent = Agent::spawn(&["--garbage-on-start"]);
    agent.initialize(true).await;
    assert_eq!(agent.garbage, ["garbage before anything"]);
    let s = agent.new_session(&dir.0).await;
    assert_eq!(
        agent.prompt(&s, "garbage\nsay still here").await,
        "end_turn"
    );
    assert_eq!(
        agent.garbage,
        ["garbage before anything", "this is not json"]
    );
    assert_eq!(agent.messages(&s), ["still here"]);

    let mut agent = Agent::spawn(&["--no-initialize"]);
    let id = agent
        .send("initialize", json!({"protocolVersion": 1}))
        .await;
    let silent = timeout(Duration::from_millis(300), agent.response(id)).await;
    assert!(silent.is_err(), "--no-initialize must not answer");
    assert_eq!(agent.close().await, 0);

    let mut agent = Agent::spawn(&["--version"]);
    assert_eq!(agent.exit_code().await, 0);
    assert!(agent.pump(WAIT).await);
    assert_eq!(agent.garbage, ["spectask-test-agent 0.1.0"]);
}

#[tokio::test]
async fn an_edit_of_an_existing_file_shows_its_old_text() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("b.txt"), "before\n").unwrap();
    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    assert_eq!(agent.prompt(&s, "write b.txt after\\n").await, "end_turn");
    let edit = &agent.updates_of(&s, "tool_call")[0];
    let b = abs(&dir, "b.txt");
    assert_eq!(
        edit["content"],
        json!([{"type": "diff", "path": b, "oldText": "before\n", "newText": "after\n"}])
    );
    assert_eq!(edit["locations"], json!([{"path": b}]));
}

#[tokio::test]
async fn stamp_and_repeat() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let s = agent.new_session(&dir.0).await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let script = "stamp 3 5\nstamp 2 0 tool\nrepeat 2 say r{i}\\nthink t{i}\nstamp x 1\nrepeat 2";
    assert_eq!(agent.prompt(&s, script).await, "end_turn");
    let messages = agent.messages(&s);
    for (i, m) in messages[..3].iter().enumerate() {
        let words: Vec<&str> = m.split(' ').collect();
        assert_eq!(
            (words[0], words[1]),
            ("stamp", (i + 1).to_string().as_str())
        );
        assert!(words[2].parse::<u128>().unwrap() >= before, "{m}");
    }
    assert_eq!(messages[3..5], ["r1", "r2"]);
    assert_eq!(messages[5], "error: stamp: expected: stamp N MS [say|tool]");
    assert_eq!(messages[6], "error: repeat: expected: repeat N SCRIPT");
    assert_eq!(agent.texts(&s, "agent_thought_chunk"), ["t1", "t2"]);
    let tools = agent.updates_of(&s, "tool_call");
    assert_eq!(tools.len(), 2);
    assert!(
        tools
            .iter()
            .all(|t| t["status"] == "completed"
                && t["title"].as_str().unwrap().starts_with("stamp "))
    );
}

/// `dist/index.js` of the MCP reference server that `scripts/install-mcp-everything`
/// puts in `target/mcp-everything`.
fn mcp_everything() -> String {
    let index = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "target/mcp-everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(
        index.exists(),
        "{} is missing: run scripts/install-mcp-everything (scripts/test does it)",
        index.display()
    );
    index.to_str().unwrap().to_string()
}

/// The reference server over Streamable HTTP on a free port, and its URL, once it
/// says it listens.
async fn mcp_everything_http() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("node")
        .args([&mcp_everything(), "streamableHttp"])
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let mut stderr = BufReader::new(server.stderr.take().unwrap()).lines();
    let listening = async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("listening on port") {
                return;
            }
            eprintln!("mcp server: {line}");
        }
        panic!("the MCP server exited before listening");
    };
    timeout(WAIT, listening)
        .await
        .expect("the MCP server listens");
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    (server, format!("http://127.0.0.1:{port}/mcp"))
}

impl Agent {
    async fn session_with_mcp(&mut self, cwd: &Path, servers: Value) -> String {
        let result = self
            .call("session/new", json!({"cwd": cwd, "mcpServers": servers}))
            .await;
        result["sessionId"].as_str().unwrap().to_string()
    }

    /// The `mcp` tool calls of a session: (the `tool_call`, its `tool_call_update`).
    fn mcp_calls(&self, session: &str) -> Vec<(Value, Value)> {
        let updates = self.updates_of(session, "tool_call_update");
        self.updates_of(session, "tool_call")
            .into_iter()
            .filter(|c| c["title"].as_str().unwrap().starts_with("mcp "))
            .map(|call| {
                let done = updates
                    .iter()
                    .find(|u| u["toolCallId"] == call["toolCallId"])
                    .unwrap_or_else(|| panic!("no update for {call}"))
                    .clone();
                (call, done)
            })
            .collect()
    }
}

/// What `mcp echo {"message":"hi"}` shows: the call, its completion, the message.
fn assert_echo_hi(call: &(Value, Value), message: &str) {
    let (call, done) = call;
    assert_eq!(call["title"], "mcp echo");
    assert_eq!(call["kind"], "other");
    assert_eq!(call["status"], "in_progress");
    assert_eq!(call["rawInput"], json!({"message": "hi"}));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["content"],
        json!([{"type": "content", "content": {"type": "text", "text": "Echo: hi"}}])
    );
    assert_eq!(message, "mcp echo -> Echo: hi");
}

#[tokio::test]
async fn mcp_tools_are_called_over_stdio() {
    let dir = TempDir::new();
    let mut agent = Agent::spawn(&[]);
    let init = agent.initialize(true).await;
    assert_eq!(
        init["agentCapabilities"]["mcpCapabilities"],
        json!({"http": false, "sse": false})
    );
    let servers = json!([{
        "name": "everything",
        "command": "node",
        "args": [mcp_everything(), "stdio"],
        "env": [{"name": "SPECTASK_MCP_TEST", "value": "from the env"}],
    }]);
    let s = agent.session_with_mcp(&dir.0, servers).await;
    let script = r#"mcp echo {"message":"hi"}
                    mcp-list
                    mcp get-env
                    mcp echo {"message": {{last:/nope}}}
                    mcp echo {"message": {{last:/SPECTASK_MCP_TEST}}}
                    mcp echo {"message": {{last:/SPECTASK_MCP_TEST}}}
                    mcp no-such-tool
                    mcp echo [1]"#;
    assert_eq!(agent.prompt(&s, script).await, "end_turn");
    let messages = agent.messages(&s);
    let calls = agent.mcp_calls(&s);
    assert_echo_hi(&calls[0], &messages[0]);
    let tools = messages[1].strip_prefix("tools: ").expect(&messages[1]);
    assert!(
        tools.split(", ").any(|t| t == "echo") && tools.contains("get-env"),
        "{tools}"
    );
    assert!(
        messages[2].starts_with("mcp get-env -> {"),
        "{}",
        messages[2]
    );
    assert_eq!(calls[1].0["rawInput"], json!({}));
    // Bad arguments are a message, not a call.
    assert!(
        messages[3].starts_with(
            "mcp echo error: {{last:/nope}}: the last mcp result has nothing at \"/nope\""
        ),
        "{}",
        messages[3]
    );
    assert_eq!(messages[4], "mcp echo -> Echo: from the env");
    assert_eq!(calls[2].0["rawInput"], json!({"message": "from the env"}));
    // The last result is now `Echo: from the env`: not JSON.
    assert_eq!(
        messages[5],
        "mcp echo error: {{last:/SPECTASK_MCP_TEST}}: the result of mcp echo is not JSON: Echo: from the env"
    );
    assert!(
        messages[6].starts_with("mcp no-such-tool error: "),
        "{}",
        messages[6]
    );
    assert_eq!(calls[3].0["title"], "mcp no-such-tool");
    assert_eq!(calls[3].1["status"], "failed");
    assert!(
        messages[7].starts_with("mcp echo error: the arguments must be a JSON object"),
        "{}",
        messages[7]
    );
    assert_eq!(messages.len(), 8);
    assert_eq!(calls.len(), 4);

    // The server lives as long as the agent: its stderr is the agent's, so the
    // agent's stderr closing means the server is gone too.
    assert_eq!(agent.close().await, 0);
    assert!(agent.stderr().contains("Starting default (STDIO) server"));
}

#[tokio::test]
async fn mcp_tools_are_called_over_streamable_http() {
    let (_server, url) = mcp_everything_http().await;
    let dir = TempDir::new();
    let mut agent = Agent::spawn(&["--mcp-http"]);
    let init = agent.initialize(true).await;
    assert_eq!(
        init["agentCapabilities"]["mcpCapabilities"],
        json!({"http": true, "sse": false})
    );
    let servers = json!([
        {"type": "sse", "name": "ignored", "url": "http://127.0.0.1:9/sse", "headers": []},
        {"type": "http", "name": "everything", "url": url, "headers": [{"name": "X-Test", "value": "1"}]},
    ]);
    let s = agent.session_with_mcp(&dir.0, servers).await;
    let script = r#"mcp echo {"message":"hi"}
                    mcp get-structured-content {"location": "Chicago"}
                    mcp echo {"message": {{last:/conditions}}}
                    mcp-list"#;
    assert_eq!(agent.prompt(&s, script).await, "end_turn");
    let messages = agent.messages(&s);
    let calls = agent.mcp_calls(&s);
    assert_echo_hi(&calls[0], &messages[0]);
    assert!(
        messages[1].starts_with("mcp get-structured-content -> {"),
        "{}",
        messages[1]
    );
    assert_eq!(messages[2], "mcp echo -> Echo: Light rain / drizzle");
    assert!(messages[3].starts_with("tools: ") && messages[3].contains("echo"));
    // A later turn uses the same connection, and the last result.
    let turn = r#"mcp echo {"message": "again {{last:/nope}}"}
                  mcp echo {"message":"hi"}"#;
    assert_eq!(agent.prompt(&s, turn).await, "end_turn");
    let messages = agent.messages(&s);
    assert!(
        messages[4].starts_with("mcp echo error: {{last:/nope}}: "),
        "{}",
        messages[4]
    );
    assert_echo_hi(&agent.mcp_calls(&s)[3], &messages[5]);
    assert_eq!(
        agent
            .stderr()
            .matches("MCP server everything connected")
            .count(),
        1
    );
    assert_eq!(agent.close().await, 0);
}

#[tokio::test]
async fn mcp_failures_are_messages() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    let none = agent.new_session(&dir.0).await;
    assert_eq!(
        agent
            .prompt(
                &none,
                "mcp echo {\"message\":\"hi\"}\nmcp-list\nmcp echo {oops"
            )
            .await,
        "end_turn"
    );
    let messages = agent.messages(&none);
    assert!(
        messages[0].starts_with("mcp echo error: the session has no MCP server"),
        "{messages:?}"
    );
    assert_eq!(agent.mcp_calls(&none)[0].1["status"], "failed");
    assert!(
        messages[1].starts_with("mcp-list error: the session has no MCP server"),
        "{messages:?}"
    );
    assert!(
        messages[2].starts_with("mcp echo error: the arguments are not JSON"),
        "{messages:?}"
    );

    // Nothing listens on the port; a stdio command that does not exist.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = json!([{"type": "http", "name": "gone", "url": format!("http://127.0.0.1:{port}/mcp"), "headers": []}]);
    let s = agent.session_with_mcp(&dir.0, http).await;
    assert_eq!(agent.prompt(&s, "mcp echo").await, "end_turn");
    let message = &agent.messages(&s)[0];
    assert!(
        message.starts_with("mcp echo error: initialize gone: POST http://127.0.0.1:"),
        "{message}"
    );
    let stdio =
        json!([{"name": "nothing", "command": "/nonexistent/mcp-server", "args": [], "env": []}]);
    let s = agent.session_with_mcp(&dir.0, stdio).await;
    assert_eq!(agent.prompt(&s, "mcp echo").await, "end_turn");
    let message = &agent.messages(&s)[0];
    assert!(
        message.starts_with("mcp echo error: cannot start /nonexistent/mcp-server"),
        "{message}"
    );
    // A server that exits at once.
    let quits = json!([{"name": "quits", "command": "true", "args": [], "env": []}]);
    let s = agent.session_with_mcp(&dir.0, quits).await;
    assert_eq!(agent.prompt(&s, "mcp echo").await, "end_turn");
    let message = &agent.messages(&s)[0];
    assert!(
        message.starts_with("mcp echo error: initialize quits: the MCP server exited"),
        "{message}"
    );
    assert_eq!(agent.close().await, 0);
}

#[tokio::test]
async fn an_mcp_call_waits_until_cancelled_and_a_crash_kills_the_server() {
    let dir = TempDir::new();
    let mut agent = Agent::start(&[]).await;
    // A stdio "server" that answers `initialize` (request 1) and the first tool
    // call (request 2, after the `initialized` notification), then reads
    // everything and answers nothing (keeping its stdout open: a closed one
    // would make the next command start it again).
    let mute = r#"read l; echo '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"mute","version":"0"}}}'
                  read l; read l; echo '{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"first"}]}}'
                  while read l; do :; done"#;
    let servers = json!([{"name": "mute", "command": "sh", "args": ["-c", mute], "env": []}]);
    let s = agent.session_with_mcp(&dir.0, servers).await;
    assert_eq!(agent.prompt(&s, "mcp first").await, "end_turn");
    assert_eq!(agent.messages(&s), ["mcp first -> first"]);
    let id = agent.send_prompt(&s, "mcp slow {}").await;
    agent
        .until(WAIT, |a| a.updates_of(&s, "tool_call").len() == 2)
        .await;
    agent
        .notify("session/cancel", json!({"sessionId": s}))
        .await;
    let response = agent.response_within(id, Duration::from_secs(5)).await;
    assert_eq!(response["result"]["stopReason"], "cancelled");
    let (call, done) = &agent.mcp_calls(&s)[1];
    assert_eq!(call["title"], "mcp slow");
    assert_eq!(done["status"], "failed");
    // A crash kills the server too: else its stderr, the agent's, would stay open
    // and `exit_code` would not see stderr close.
    agent.send_prompt(&s, "crash 5").await;
    assert_eq!(agent.exit_code().await, 5);
    assert_eq!(
        agent.stderr().matches("MCP server mute connected").count(),
        1
    );
}

/// A hand-written Streamable HTTP MCP server, to see exactly what the agent sends:
/// it records each POST (headers and message) and each DELETE, answers with
/// `application/json`, except the tool `sse`, answered in an event stream after a
/// notification, a ping request and someone else's response.
#[derive(Clone)]
struct Fixture {
    posts: Arc<Mutex<Vec<(axum::http::HeaderMap, Value)>>>,
    deleted: mpsc::UnboundedSender<axum::http::HeaderMap>,
}

async fn fixture_post(
    axum::extract::State(fixture): axum::extract::State<Fixture>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message: Value = serde_json::from_slice(&body).unwrap();
    fixture
        .posts
        .lock()
        .unwrap()
        .push((headers, message.clone()));
    let id = message["id"].clone();
    let reply = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    let params = &message["params"];
    let method = message["method"].as_str();
    if method.is_none() || id.is_null() {
        return axum::http::StatusCode::ACCEPTED.into_response();
    }
    let json = |message: Value| axum::Json(message).into_response();
    match (method.unwrap(), params["name"].as_str()) {
        ("initialize", _) => {
            let result = json!({
                "protocolVersion": "2025-03-26",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fixture", "version": "0"},
            });
            ([("mcp-session-id", "sid-1")], axum::Json(reply(result))).into_response()
        }
        ("tools/list", _) if params["cursor"] == "p2" => {
            json(reply(json!({"tools": [{"name": "c", "inputSchema": {}}]})))
        }
        ("tools/list", _) => json(reply(json!({
            "tools": [{"name": "a", "inputSchema": {}}, {"name": "b", "inputSchema": {}}],
            "nextCursor": "p2",
        }))),
        ("tools/call", Some("sse")) => {
            let events = [
                json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}),
                json!({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"}),
                json!({"jsonrpc": "2.0", "id": 999, "result": {"content": [{"type": "text", "text": "not yours"}]}}),
                reply(json!({"content": [{"type": "text", "text": "streamed"}]})),
            ];
            let body: String = events
                .iter()
                .map(|e| format!("event: message\ndata: {e}\n\n"))
                .collect();
            ([("content-type", "text/event-stream")], body).into_response()
        }
        ("tools/call", Some("boom")) => json(reply(json!({
            "content": [{"type": "text", "text": "it broke"}], "isError": true,
        }))),
        ("tools/call", _) => json(reply(json!({
            "content": [{"type": "text", "text": params["arguments"].to_string()}],
        }))),
        _ => json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}})),
    }
}

async fn fixture_delete(
    axum::extract::State(fixture): axum::extract::State<Fixture>,
    headers: axum::http::HeaderMap,
) -> axum::http::StatusCode {
    let _ = fixture.deleted.send(headers);
    axum::http::StatusCode::OK
}

#[tokio::test]
async fn mcp_over_http_sends_the_headers_and_reads_json_and_event_streams() {
    let (deleted, mut deletes) = mpsc::unbounded_channel();
    let fixture = Fixture {
        posts: Arc::default(),
        deleted,
    };
    let router = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(fixture_post).delete(fixture_delete),
        )
        .with_state(fixture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let dir = TempDir::new();
    let mut agent = Agent::start(&["--mcp-http"]).await;
    let server = |token: &str| {
        json!([{"type": "http", "name": "fixture", "url": url,
                "headers": [{"name": "Authorization", "value": format!("Bearer {token}")}]}])
    };
    let s = agent.session_with_mcp(&dir.0, server("one")).await;
    let script = r#"mcp echo {"x": 1, "s": "a"}
                    mcp echo {"n": {{last:/x}}, "s": {{last:/s}}}
                    mcp sse
                    mcp boom
                    mcp-list"#;
    assert_eq!(agent.prompt(&s, script).await, "end_turn");
    assert_eq!(
        agent.messages(&s),
        [
            r#"mcp echo -> {"s":"a","x":1}"#,
            r#"mcp echo -> {"n":1,"s":"a"}"#,
            "mcp sse -> streamed",
            "mcp boom error: it broke",
            "tools: a, b, c",
        ]
    );
    let calls = agent.mcp_calls(&s);
    let statuses: Vec<&Value> = calls.iter().map(|(_, done)| &done["status"]).collect();
    assert_eq!(statuses, ["completed", "completed", "completed", "failed"]);
    assert_eq!(
        calls[3].1["content"],
        json!([{"type": "content", "content": {"type": "text", "text": "it broke"}}])
    );

    let posts = fixture.posts.lock().unwrap().clone();
    let header = |i: usize, name: &str| {
        posts[i]
            .0
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let methods: Vec<&str> = posts
        .iter()
        .map(|(_, m)| m["method"].as_str().unwrap_or("(response)"))
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "tools/call",
            "tools/call",
            "tools/call",
            "(response)",
            "tools/call",
            "tools/list",
            "tools/list",
        ]
    );
    assert_eq!(posts[0].1["params"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        posts[0].1["params"]["clientInfo"]["name"],
        "spectask-test-agent"
    );
    assert_eq!(posts[0].1["params"]["capabilities"], json!({}));
    assert_eq!(header(0, "mcp-session-id"), None);
    assert_eq!(header(0, "mcp-protocol-version"), None);
    for i in 0..posts.len() {
        assert_eq!(header(i, "authorization").as_deref(), Some("Bearer one"));
        assert_eq!(
            header(i, "content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            header(i, "accept").as_deref(),
            Some("application/json, text/event-stream")
        );
        if i > 0 {
            assert_eq!(header(i, "mcp-session-id").as_deref(), Some("sid-1"));
            assert_eq!(
                header(i, "mcp-protocol-version").as_deref(),
                Some("2025-03-26")
            );
        }
    }
    assert_eq!(
        posts[2].1["params"],
        json!({"name": "echo", "arguments": {"x": 1, "s": "a"}})
    );
    assert_eq!(
        posts[5].1,
        json!({"jsonrpc": "2.0", "id": "srv-1", "result": {}})
    );
    assert_eq!(posts[8].1["params"], json!({"cursor": "p2"}));

    // Loaded with other servers (a new token), the session ends the old MCP
    // session and connects again.
    let load = json!({"sessionId": s, "cwd": dir.0, "mcpServers": server("two")});
    agent.call("session/load", load).await;
    let gone = timeout(WAIT, deletes.recv())
        .await
        .expect("a DELETE")
        .unwrap();
    assert_eq!(gone.get("mcp-session-id").unwrap(), "sid-1");
    assert_eq!(gone.get("authorization").unwrap(), "Bearer one");
    // The last result stays (that of `boom`; `messages` now also holds the replay).
    let turn = "mcp echo {\"y\": {{last:/n}}}\nmcp echo {\"y\": 1}";
    assert_eq!(agent.prompt(&s, turn).await, "end_turn");
    let messages = agent.messages(&s);
    assert_eq!(
        messages[messages.len() - 2..],
        [
            "mcp echo error: {{last:/n}}: the result of mcp boom is not JSON: it broke",
            r#"mcp echo -> {"y":1}"#,
        ]
    );
    let posts = fixture.posts.lock().unwrap().clone();
    assert_eq!(posts[9].1["method"], "initialize");
    assert_eq!(posts[9].0.get("authorization").unwrap(), "Bearer two");
    assert_eq!(agent.close().await, 0);
}
