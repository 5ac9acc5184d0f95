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
