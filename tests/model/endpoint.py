#!/usr/bin/env python3
"""A scripted model endpoint for real ACP agents in tests (the model is the one part
that cannot run here). It speaks the OpenAI chat completions API (streaming SSE and
not), the Anthropic Messages API (streaming) and the OpenAI Responses API
(streaming), with tools, and answers from a script the test writes.

    endpoint.py --script SCRIPT.json --log REQUESTS.jsonl

prints `listening on http://127.0.0.1:PORT` once it accepts connections, then serves
until killed. Every request is appended to the log as one JSON line.

The script:

    {"vars": {"worktree": "Your worktree is (\\S+?):"},
     "scenarios": [{"name": "a", "match": "regex on the conversation's first user
                    message", "steps": [STEP, ...]}],
     "otherwise": STEP}

A conversation is matched to the first scenario whose `match` finds its first user
message; its step is the number of assistant messages the conversation already
holds (each tool round trip adds one), so parallel sessions and retries each walk
their own steps. Past the last step, and for requests matching no scenario (titles,
suggestions, memory), the answer is `otherwise` (default: say "Done."). A STEP is one of

    {"say": "text"}                               a final answer, ending the turn
    {"say": "text", "chunks": N}                  the same, streamed as N deltas
    {"write": {"path": P, "content": C}}          the agent's own file-writing tool
    {"shell": {"command": C}}                     the agent's own shell tool
    {"tool": NAME | [NAME, ...], "args": {...}}   a tool by name (the first the agent has)
    {"error": {"status": 500, "body": "..."}}     an HTTP error
    {"garbage": "text"}                           200 with a body that is not the API's
    {"stall": SECONDS}                            wait, then say "stalled"

`write` and `shell` pick the tool from the request's own `tools` list and fill the
argument names its JSON schema declares, so one script fits every agent. Any step may
carry `"times": N`: after N answers (over all conversations of its scenario, so a
retried session does not stall again) that step is skipped. In
strings, `{{name}}` is the first group of `vars[name]` matched over the conversation.
"""

import argparse
import http.server
import json
import re
import sys
import threading
import time

WRITE_TOOLS = ["write_file", "write", "Write", "WriteFile", "create_file"]
SHELL_TOOLS = ["run_shell_command", "bash", "Bash", "shell", "run_terminal_cmd"]

LOCK = threading.Lock()
COUNTS = {}


def text_of(content):
    """The text of a message's content: a string, or a list of parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif "content" in part:
                    out.append(text_of(part["content"]))
            elif isinstance(part, str):
                out.append(part)
        return "\n".join(out)
    return ""


class Conversation:
    """What a request says, whatever its API."""

    def __init__(self, api, body):
        self.api = api
        self.body = body
        self.tools = []  # (name, schema)
        messages = []
        if api == "responses":
            for item in body.get("input") or []:
                if not isinstance(item, dict):
                    continue
                kind = item.get("type", "message")
                if kind == "message":
                    messages.append((item.get("role"), text_of(item.get("content"))))
                elif kind == "function_call":
                    messages.append(("assistant", ""))
            if isinstance(body.get("input"), str):
                messages.append(("user", body["input"]))
            for tool in body.get("tools") or []:
                if tool.get("type") == "function":
                    self.tools.append((tool.get("name"), tool.get("parameters") or {}))
        else:
            for m in body.get("messages") or []:
                messages.append((m.get("role"), text_of(m.get("content"))))
            for tool in body.get("tools") or []:
                if "function" in tool:
                    f = tool["function"]
                    self.tools.append((f.get("name"), f.get("parameters") or {}))
                elif "name" in tool:
                    self.tools.append((tool["name"], tool.get("input_schema") or {}))
        self.system = text_of(body.get("system")) if api == "anthropic" else ""
        if api == "responses":
            self.system = body.get("instructions") or ""
        self.messages = messages
        users = [text for role, text in messages if role == "user"]
        self.first_user = users[0] if users else ""
        self.assistant_turns = sum(1 for role, _ in messages if role == "assistant")
        self.all_text = "\n".join([self.system] + [t for _, t in messages])


def expand(value, conv, script):
    if isinstance(value, str):
        def var(m):
            pattern = script.get("vars", {}).get(m.group(1))
            if pattern is None:
                return m.group(0)
            found = re.search(pattern, conv.all_text)
            return found.group(1) if found else m.group(0)

        return re.sub(r"\{\{(\w+)\}\}", var, value)
    if isinstance(value, list):
        return [expand(v, conv, script) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, conv, script) for k, v in value.items()}
    return value


def pick_tool(conv, names):
    have = {name: schema for name, schema in conv.tools}
    for name in names:
        if name in have:
            return name, have[name]
    return None, None


def fill(schema, wanted):
    """Arguments for a tool: each wanted role (path, content, command) under the
    property name the tool's schema gives it."""
    props = list((schema or {}).get("properties", {}).keys())
    roles = {
        "path": ["file_path", "filePath", "path", "absolute_path", "filename"],
        "content": ["content", "contents", "text"],
        "command": ["command", "cmd"],
        "description": ["description"],
    }
    args = {}
    for role, value in wanted.items():
        name = next((p for p in roles.get(role, [role]) if p in props), None)
        if name is None:
            name = next((p for p in props if role.lower() in p.lower()), role)
        args[name] = value
    required = (schema or {}).get("required", [])
    if "description" in required and "description" not in args:
        args["description"] = "scripted step"
    return args


def choose(conv, script):
    """The step for this request, and a key to count it by."""
    otherwise = script.get("otherwise", {"say": "Done."})
    for scenario in script.get("scenarios", []):
        if re.search(scenario.get("match", ""), conv.first_user, re.S):
            steps = scenario.get("steps", [])
            index = conv.assistant_turns
            while index < len(steps):
                step = steps[index]
                key = (scenario.get("name"), index)
                with LOCK:
                    count = COUNTS.get(key, 0)
                    if "times" in step and count >= step["times"]:
                        index += 1
                        continue
                    COUNTS[key] = count + 1
                return scenario.get("name"), step
            return scenario.get("name"), scenario.get("after", otherwise)
    return None, otherwise


def to_call(step, conv, script):
    """A step as (text, [(tool name, arguments)]) or None when it is not an answer."""
    step = expand(step, conv, script)
    if "say" in step:
        n = int(step.get("chunks", 1))
        if n > 1:
            text = step["say"]
            size = max(1, -(-len(text) // n))
            return [text[i:i + size] for i in range(0, len(text), size)], []
        return step["say"], []
    if "write" in step:
        name, schema = pick_tool(conv, WRITE_TOOLS)
        if name is None:
            return "I have no tool to write files with.", []
        return "", [(name, fill(schema, step["write"]))]
    if "shell" in step:
        name, schema = pick_tool(conv, SHELL_TOOLS)
        if name is None:
            return "I have no tool to run commands with.", []
        wanted = dict(step["shell"])
        return "", [(name, fill(schema, wanted))]
    if "tool" in step:
        names = step["tool"] if isinstance(step["tool"], list) else [step["tool"]]
        name, _ = pick_tool(conv, names)
        if name is None:
            return "The tool %s is not offered." % names, []
        return "", [(name, step.get("args", {}))]
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script = {}
    log = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            body = {"object": "list", "data": [{"id": "scripted", "object": "model",
                                                "created": 0, "owned_by": "spectask"}]}
            return self.json(200, body)
        return self.json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.json(400, {"error": {"message": "body is not JSON"}})
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            api = "openai"
        elif path.endswith("/messages"):
            api = "anthropic"
        elif path.endswith("/responses"):
            api = "responses"
        elif path.endswith("/count_tokens"):
            return self.json(200, {"input_tokens": 100})
        else:
            return self.json(404, {"error": {"message": "no such route %s" % path}})
        conv = Conversation(api, body)
        scenario, step = choose(conv, self.script)
        with LOCK:
            self.log.write(json.dumps({
                "at": time.time(), "path": path, "api": api, "scenario": scenario, "step": conv.assistant_turns,
                "tools": [name for name, _ in conv.tools], "stream": bool(body.get("stream")),
                "first_user": conv.first_user[:2000], "answer": step, "body": body,
            }) + "\n")
            self.log.flush()
        if "error" in step:
            err = step["error"]
            return self.json(err.get("status", 500),
                             {"error": {"message": err.get("body", "scripted failure"),
                                        "type": "server_error"}})
        if "garbage" in step:
            return self.raw(200, "application/json", step["garbage"].encode())
        if "stall" in step:
            time.sleep(float(step["stall"]))
            step = {"say": "stalled"}
        answer = to_call(step, conv, self.script) or ("Done.", [])
        model = body.get("model", "scripted")
        if api == "openai":
            return self.openai(answer, model, bool(body.get("stream")))
        if api == "anthropic":
            return self.anthropic(answer, model, bool(body.get("stream")))
        return self.responses_api(answer, model)

    # --- plumbing -------------------------------------------------------------

    def json(self, status, body):
        self.raw(status, "application/json", json.dumps(body).encode())

    def raw(self, status, kind, data):
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def sse(self, events):
        # The whole stream at once, with its length: every answer is known when the
        # request arrives (a stall waits before), and undici refuses close-delimited bodies.
        body = ""
        for name, data in events:
            if name:
                body += "event: %s\n" % name
            body += "data: %s\n\n" % (data if isinstance(data, str) else json.dumps(data))
        try:
            self.raw(200, "text/event-stream", body.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass

    def openai(self, answer, model, stream):
        text, calls = answer
        pieces = text if isinstance(text, list) else [text] if text else []
        text = "".join(pieces)
        usage = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
        tool_calls = [{"id": "call_%d_%d" % (time.time_ns(), i), "type": "function",
                       "function": {"name": name, "arguments": json.dumps(args)}}
                      for i, (name, args) in enumerate(calls)]
        finish = "tool_calls" if calls else "stop"
        base = {"id": "chatcmpl-scripted", "created": int(time.time()), "model": model}
        if not stream:
            message = {"role": "assistant", "content": text or None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return self.json(200, dict(base, object="chat.completion", usage=usage,
                                       choices=[{"index": 0, "message": message,
                                                 "finish_reason": finish}]))
        chunk = lambda delta, finish_reason=None: dict(
            base, object="chat.completion.chunk",
            choices=[{"index": 0, "delta": delta, "finish_reason": finish_reason}])
        events = [(None, chunk({"role": "assistant", "content": ""}))]
        for piece in pieces:
            events.append((None, chunk({"content": piece})))
        for i, call in enumerate(tool_calls):
            events.append((None, chunk({"tool_calls": [dict(call, index=i)]})))
        events.append((None, chunk({}, finish)))
        events.append((None, dict(base, object="chat.completion.chunk", choices=[], usage=usage)))
        events.append((None, "[DONE]"))
        self.sse(events)

    def anthropic(self, answer, model, stream):
        text, calls = answer
        pieces = text if isinstance(text, list) else [text] if text else []
        text = "".join(pieces)
        blocks = []
        if text:
            blocks.append({"type": "text", "text": text})
        for i, (name, args) in enumerate(calls):
            blocks.append({"type": "tool_use", "id": "toolu_%d_%d" % (time.time_ns(), i),
                           "name": name, "input": args})
        stop = "tool_use" if calls else "end_turn"
        # A fresh id per answer: Claude Code merges consecutive assistant messages that
        # share an id into one, so a fixed id would freeze the step count.
        message = {"id": "msg_%d" % time.time_ns(), "type": "message", "role": "assistant", "model": model,
                   "content": blocks, "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": 100, "output_tokens": 10}}
        if not stream:
            return self.json(200, message)
        events = [("message_start", {"type": "message_start",
                                     "message": dict(message, content=[], stop_reason=None)})]
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "text", "text": ""}}))
                for piece in pieces:
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "text_delta", "text": piece}}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": dict(block, input={})}))
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "input_json_delta",
                                                                 "partial_json": json.dumps(block["input"])}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": 10}}))
        events.append(("message_stop", {"type": "message_stop"}))
        self.sse(events)

    def responses_api(self, answer, model):
        text, calls = answer
        pieces = text if isinstance(text, list) else [text] if text else []
        text = "".join(pieces)
        rid = "resp_%d" % time.time_ns()
        output = []
        if text:
            output.append({"type": "message", "id": "msg_%s" % rid, "role": "assistant",
                           "status": "completed",
                           "content": [{"type": "output_text", "text": text, "annotations": []}]})
        for i, (name, args) in enumerate(calls):
            output.append({"type": "function_call", "id": "fc_%s_%d" % (rid, i),
                           "call_id": "call_%s_%d" % (rid, i), "name": name,
                           "arguments": json.dumps(args), "status": "completed"})
        response = {"id": rid, "object": "response", "created_at": int(time.time()),
                    "model": model, "status": "completed", "output": output,
                    "usage": {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}}}
        events = [("response.created", {"type": "response.created",
                                        "response": dict(response, status="in_progress", output=[])})]
        for i, item in enumerate(output):
            events.append(("response.output_item.added", {"type": "response.output_item.added",
                                                          "output_index": i, "item": item}))
            if item["type"] == "message":
                for piece in pieces:
                    events.append(("response.output_text.delta", {"type": "response.output_text.delta",
                                                                  "item_id": item["id"], "output_index": i,
                                                                  "content_index": 0, "delta": piece}))
            events.append(("response.output_item.done", {"type": "response.output_item.done",
                                                         "output_index": i, "item": item}))
        events.append(("response.completed", {"type": "response.completed", "response": response}))
        self.sse(events)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.script) as f:
        Handler.script = json.load(f)
    Handler.log = open(args.log, "a")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
