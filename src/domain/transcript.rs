//! A session's transcript as a person reads it in its history file: messages as
//! they were said, and each tool call as one entry (its `tool_call` and every
//! `tool_call_update` merged) with its title, kind, status, the paths it touched,
//! its diffs as unified diffs, its output and exit status, and its raw input when
//! nothing else says what it did.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::agent::{TranscriptEntry, TranscriptKind};

/// One tool call with everything its updates said.
#[derive(Debug, Default, Clone, PartialEq)]
struct ToolCall {
    id: String,
    title: String,
    kind: String,
    status: String,
    locations: Vec<String>,
    content: Vec<Value>,
    raw_input: Option<Value>,
    raw_output: Option<Value>,
}

impl ToolCall {
    /// Applies a `tool_call` or `tool_call_update`: fields it carries replace the
    /// ones before (ACP's rule: an update's `content` and `locations` are the whole
    /// new collection), fields it leaves out stay.
    fn apply(&mut self, data: &Value) {
        let text = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(title) = text("title") {
            self.title = title.to_string();
        }
        if let Some(kind) = text("kind") {
            self.kind = kind.to_string();
        }
        if let Some(status) = text("status") {
            self.status = status.to_string();
        }
        if let Some(locations) = data.get("locations").and_then(Value::as_array)
            && !locations.is_empty()
        {
            self.locations = locations
                .iter()
                .filter_map(|l| l.get("path").and_then(Value::as_str).map(str::to_string))
                .collect();
        }
        if let Some(content) = data.get("content").and_then(Value::as_array)
            && !content.is_empty()
        {
            // A diff said once stays: some agents show it only while asking and end
            // the call with a line of text.
            let is_diff = |c: &Value| c.get("type").and_then(Value::as_str) == Some("diff");
            let mut next: Vec<Value> = if content.iter().any(is_diff) {
                Vec::new()
            } else {
                self.content
                    .iter()
                    .filter(|c| is_diff(c))
                    .cloned()
                    .collect()
            };
            next.extend(content.iter().cloned());
            self.content = next;
        }
        let present = |v: &&Value| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty());
        if let Some(input) = data.get("rawInput").filter(present) {
            self.raw_input = Some(input.clone());
        }
        if let Some(output) = data.get("rawOutput").filter(present) {
            self.raw_output = Some(output.clone());
        }
    }
}

impl ToolCall {
    /// What a permission request says of the call: fills what updates did not say
    /// (its status stays what the updates made it).
    fn apply_asked(&mut self, data: &Value) {
        let status = std::mem::take(&mut self.status);
        self.apply(data);
        if !status.is_empty() {
            self.status = status;
        }
    }
}

enum Item {
    Entry(usize),
    Tool(usize),
}

/// The transcript as markdown. Paths under `root` (the session's worktree) are
/// shown relative to it.
pub fn to_markdown(entries: &[TranscriptEntry], root: Option<&str>) -> String {
    let mut items = Vec::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry.kind {
            TranscriptKind::ToolCall | TranscriptKind::ToolCallUpdate => {
                let id = entry
                    .data
                    .get("toolCallId")
                    .and_then(Value::as_str)
                    .unwrap_or(&entry.content)
                    .to_string();
                let at = match by_id.get(&id) {
                    Some(&at) if !id.is_empty() => at,
                    _ => {
                        calls.push(ToolCall {
                            id: id.clone(),
                            ..ToolCall::default()
                        });
                        items.push(Item::Tool(calls.len() - 1));
                        by_id.insert(id, calls.len() - 1);
                        calls.len() - 1
                    }
                };
                calls[at].apply(&entry.data);
            }
            // Token counts are not what a person reads a history for, nor the empty
            // chunks some agents send to carry metadata.
            TranscriptKind::Usage => {}
            TranscriptKind::Message | TranscriptKind::Thought
                if entry.content.trim().is_empty() => {}
            TranscriptKind::Permission => {
                // The call asked about: what it is may be said only here.
                if let Some(call) = entry.data.get("toolCall")
                    && let Some(&at) = call
                        .get("toolCallId")
                        .and_then(Value::as_str)
                        .and_then(|id| by_id.get(id))
                {
                    calls[at].apply_asked(call);
                }
                items.push(Item::Entry(i));
            }
            _ => items.push(Item::Entry(i)),
        }
    }
    let mut out = String::new();
    for item in items {
        match item {
            Item::Entry(i) => entry_markdown(&mut out, &entries[i]),
            Item::Tool(i) => tool_markdown(&mut out, &calls[i], root),
        }
    }
    out
}

fn entry_markdown(out: &mut String, entry: &TranscriptEntry) {
    let heading = match entry.kind {
        TranscriptKind::Prompt => "Prompt",
        TranscriptKind::Message => "Agent",
        TranscriptKind::Thought => "Thinking",
        TranscriptKind::UserMessage => "User",
        TranscriptKind::Plan => "Plan",
        TranscriptKind::Permission => "Permission",
        TranscriptKind::StopReason => "Turn ended",
        TranscriptKind::Error => "Error",
        _ => entry.kind.as_str(),
    };
    let body = match entry.kind {
        TranscriptKind::Plan => plan_markdown(&entry.data),
        _ => entry.content.trim_end().to_string(),
    };
    let _ = write!(out, "### {heading}\n\n{body}\n\n");
}

fn plan_markdown(entries: &Value) -> String {
    let mut out = String::new();
    for e in entries.as_array().into_iter().flatten() {
        let done = e.get("status").and_then(Value::as_str) == Some("completed");
        let text = e.get("content").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(out, "- [{}] {text}", if done { "x" } else { " " });
    }
    out.trim_end().to_string()
}

fn relative(path: &str, root: Option<&str>) -> String {
    root.and_then(|r| path.strip_prefix(r.trim_end_matches('/')))
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(path)
        .to_string()
}

/// A fence longer than any run of backticks in `text`, so the text cannot end it.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

fn block(out: &mut String, lang: &str, text: &str) {
    let f = fence(text);
    let _ = write!(out, "{f}{lang}\n{}\n{f}\n\n", text.trim_end_matches('\n'));
}

fn exit_status(output: &Value) -> Option<String> {
    // qwen-code: `exitCode`; OpenCode: `metadata.exit`.
    let meta = output.get("metadata");
    ["exitCode", "exit_code", "exitStatus", "exit_status", "code"]
        .iter()
        .find_map(|k| output.get(*k))
        .or_else(|| meta.and_then(|m| m.get("exit")))
        .filter(|v| !v.is_null())
        .map(|v| match v {
            Value::Object(o) => o
                .get("exitCode")
                .map(Value::to_string)
                .unwrap_or_else(|| v.to_string()),
            _ => v.to_string(),
        })
}

fn tool_markdown(out: &mut String, call: &ToolCall, root: Option<&str>) {
    let title = if call.title.is_empty() {
        "(untitled)"
    } else {
        &call.title
    };
    let mut about: Vec<&str> = Vec::new();
    if !call.kind.is_empty() {
        about.push(&call.kind);
    }
    if !call.status.is_empty() {
        about.push(&call.status);
    }
    let _ = write!(out, "### Tool: {title}");
    if !about.is_empty() {
        let _ = write!(out, " ({})", about.join(", "));
    }
    out.push_str("\n\n");
    if !call.locations.is_empty() {
        let paths: Vec<String> = call
            .locations
            .iter()
            .map(|p| format!("`{}`", relative(p, root)))
            .collect();
        let _ = write!(out, "Paths: {}\n\n", paths.join(", "));
    }
    let mut explained = false;
    for content in &call.content {
        match content.get("type").and_then(Value::as_str) {
            Some("diff") => {
                let path = relative(
                    content.get("path").and_then(Value::as_str).unwrap_or(""),
                    root,
                );
                let old = content.get("oldText").and_then(Value::as_str);
                let new = content.get("newText").and_then(Value::as_str).unwrap_or("");
                let diff = similar::TextDiff::from_lines(old.unwrap_or(""), new);
                // git's a/ b/ prefixes for a path in the worktree, the path as is outside it.
                let side = |prefix: &str| {
                    if path.starts_with('/') {
                        path.clone()
                    } else {
                        format!("{prefix}/{path}")
                    }
                };
                let from = if old.is_some() {
                    side("a")
                } else {
                    "/dev/null".to_string()
                };
                let unified = diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&from, &side("b"))
                    .to_string();
                block(out, "diff", &unified);
                explained = true;
            }
            Some("content") => {
                let inner = content.get("content");
                let text = inner
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        let kind = inner
                            .and_then(|c| c.get("type"))
                            .and_then(Value::as_str)
                            .unwrap_or("content");
                        format!("[{kind}]")
                    });
                if !text.trim().is_empty() {
                    out.push_str("Output:\n\n");
                    block(out, "text", &text);
                    explained = true;
                }
            }
            Some("terminal") => {
                let id = content
                    .get("terminalId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let _ = write!(out, "Terminal `{id}`\n\n");
            }
            _ => {}
        }
    }
    if let Some(output) = &call.raw_output {
        if !explained {
            let text = ["output", "stdout", "text", "content"]
                .iter()
                .find_map(|k| output.get(*k).and_then(Value::as_str))
                .or_else(|| output.as_str());
            if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
                out.push_str("Output:\n\n");
                block(out, "text", text);
                explained = true;
            }
        }
        if let Some(code) = exit_status(output) {
            let _ = write!(out, "Exit status: {code}\n\n");
        }
    }
    if !explained && let Some(input) = &call.raw_input {
        out.push_str("Input:\n\n");
        block(
            out,
            "json",
            &serde_json::to_string_pretty(input).unwrap_or_default(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{SpecTaskId, WorkSessionId};
    use serde_json::json;

    fn entry(kind: TranscriptKind, content: &str, data: Value) -> TranscriptEntry {
        TranscriptEntry {
            id: 0,
            spec_task_id: SpecTaskId(1),
            work_session_id: WorkSessionId(1),
            kind,
            content: content.into(),
            data,
            created_at: chrono::Utc::now(),
        }
    }

    /// What qwen-code 0.24.4 sends for a write and a shell command.
    #[test]
    fn a_tool_call_and_its_updates_are_one_entry_with_diff_output_and_exit_status() {
        let wt = "/data/tasks/1/sessions/a";
        let entries = vec![
            entry(TranscriptKind::Prompt, "Do task 1", Value::Null),
            entry(
                TranscriptKind::ToolCall,
                "WriteFile",
                json!({"toolCallId": "c1", "status": "pending", "title": "WriteFile",
                       "content": [], "locations": [], "kind": "edit", "rawInput": {}}),
            ),
            entry(
                TranscriptKind::ToolCallUpdate,
                "c1",
                json!({"toolCallId": "c1", "status": "in_progress",
                       "title": "WriteFile: Writing to hello.txt", "content": [],
                       "locations": [{"path": format!("{wt}/hello.txt"), "line": null}],
                       "kind": "edit", "rawInput": {"file_path": format!("{wt}/hello.txt")}}),
            ),
            entry(
                TranscriptKind::ToolCallUpdate,
                "c1",
                json!({"toolCallId": "c1", "status": "completed",
                       "content": [{"type": "diff", "path": format!("{wt}/hello.txt"),
                                    "oldText": "one\n", "newText": "one\ntwo\n"}]}),
            ),
            entry(
                TranscriptKind::ToolCall,
                "Shell",
                json!({"toolCallId": "c2", "status": "pending", "title": "Shell", "kind": "execute"}),
            ),
            entry(
                TranscriptKind::ToolCallUpdate,
                "c2",
                json!({"toolCallId": "c2", "status": "completed",
                       "content": [{"type": "content", "content": {"type": "text", "text": "Output: ran-here"}}],
                       "rawOutput": {"output": "ran-here", "exitCode": 0}}),
            ),
            entry(
                TranscriptKind::ToolCall,
                "bash",
                json!({"toolCallId": "c5", "title": "false", "kind": "execute", "status": "completed",
                       "rawOutput": {"output": "", "metadata": {"exit": 1}}}),
            ),
            entry(
                TranscriptKind::ToolCall,
                "Search",
                json!({"toolCallId": "c3", "title": "Search", "kind": "search",
                       "status": "failed", "rawInput": {"pattern": "fn main"}}),
            ),
            entry(TranscriptKind::Usage, "1/2", json!({"used": 1})),
            entry(TranscriptKind::Message, "", json!({})),
            entry(
                TranscriptKind::ToolCall,
                "WriteFile",
                json!({"toolCallId": "c4", "status": "pending", "title": "WriteFile", "kind": "edit"}),
            ),
            entry(
                TranscriptKind::Permission,
                "Writing to b.txt: proceed_once",
                json!({"outcome": "selected", "optionId": "proceed_once",
                       "toolCall": {"toolCallId": "c4", "title": "Writing to b.txt", "status": "pending",
                                    "locations": [{"path": format!("{wt}/b.txt")}]}}),
            ),
            entry(
                TranscriptKind::ToolCallUpdate,
                "c4",
                json!({"toolCallId": "c4", "status": "completed"}),
            ),
            entry(TranscriptKind::Message, "Done.", Value::Null),
        ];
        let md = to_markdown(&entries, Some(wt));
        assert_eq!(md.matches("### Tool:").count(), 5, "{md}");
        assert!(
            md.contains("### Tool: Writing to b.txt (edit, completed)\n\nPaths: `b.txt`"),
            "{md}"
        );
        assert_eq!(md.matches("### Agent").count(), 1, "{md}");
        assert!(
            md.contains("### Tool: WriteFile: Writing to hello.txt (edit, completed)"),
            "{md}"
        );
        assert!(md.contains("Paths: `hello.txt`"), "{md}");
        assert!(
            md.contains(
                "```diff\n--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1,2 @@\n one\n+two\n```"
            ),
            "{md}"
        );
        assert!(md.contains("### Tool: Shell (execute, completed)"), "{md}");
        assert!(
            md.contains("Output:\n\n```text\nOutput: ran-here\n```"),
            "{md}"
        );
        assert!(
            md.contains("Exit status: 0") && md.contains("Exit status: 1"),
            "{md}"
        );
        assert!(md.contains("\"pattern\": \"fn main\""), "{md}");
        assert!(
            !md.contains("tool_call_update") && !md.contains("1/2"),
            "{md}"
        );
        let order: Vec<usize> = ["### Prompt", "WriteFile", "Shell", "Search", "### Agent"]
            .iter()
            .map(|s| md.find(s).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{md}");
    }

    #[test]
    fn a_new_file_diffs_from_dev_null_and_backticks_cannot_end_a_block() {
        let entries = vec![entry(
            TranscriptKind::ToolCall,
            "Write",
            json!({"toolCallId": "c", "title": "Write", "content": [
                {"type": "diff", "path": "/x/README.md", "newText": "```\ncode\n```\n"}]}),
        )];
        let md = to_markdown(&entries, None);
        assert!(md.contains("--- /dev/null\n+++ /x/README.md"), "{md}");
        assert!(md.contains("````diff\n"), "{md}");
    }
}
