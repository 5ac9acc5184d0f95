#!/usr/bin/env python3
"""A bare ACP client: the baseline spectask's overhead is measured against, and a
way to see what an agent sends. It starts AGENT ARGS..., initializes, opens a
session in --cwd, sends each --prompt as a turn, answers permission requests with
the first allowing option and fs/* requests on disk, and prints one JSON line per
message it receives (with `t`, milliseconds since start) to stdout.

    acp_client.py --cwd DIR --prompt TEXT [--prompt TEXT ...] -- AGENT ARGS...
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

START = time.monotonic()


def now_ms():
    return round((time.monotonic() - START) * 1000, 3)


class Client:
    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, bufsize=0)
        self.next_id = 0
        self.waiting = {}
        self.lock = threading.Lock()
        self.out_lock = threading.Lock()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        with self.out_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def request(self, method, params, timeout=120):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            done = threading.Event()
            self.waiting[rid] = [done, None]
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        if not done.wait(timeout):
            raise TimeoutError("%s did not answer in %ss" % (method, timeout))
        reply = self.waiting.pop(rid)[1]
        if "error" in reply:
            raise RuntimeError("%s failed: %s" % (method, reply["error"]))
        return reply.get("result")

    def read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            print(json.dumps({"t": now_ms(), "msg": msg}), flush=True)
            if "method" in msg and "id" in msg:
                threading.Thread(target=self.answer, args=(msg,), daemon=True).start()
            elif "id" in msg and msg["id"] in self.waiting:
                self.waiting[msg["id"]][1] = msg
                self.waiting[msg["id"]][0].set()

    def answer(self, msg):
        method, params = msg["method"], msg.get("params", {})
        result, error = None, None
        try:
            if method == "session/request_permission":
                options = params.get("options", [])
                allow = next((o for o in options if o.get("kind", "").startswith("allow")),
                             options[0] if options else None)
                result = {"outcome": {"outcome": "selected", "optionId": allow["optionId"]}}
            elif method == "fs/read_text_file":
                with open(params["path"]) as f:
                    result = {"content": f.read()}
            elif method == "fs/write_text_file":
                os.makedirs(os.path.dirname(params["path"]), exist_ok=True)
                with open(params["path"], "w") as f:
                    f.write(params["content"])
                result = None
            else:
                error = {"code": -32601, "message": "method not found"}
        except Exception as e:  # the agent gets the error, not a hang
            error = {"code": -32603, "message": str(e)}
        reply = {"jsonrpc": "2.0", "id": msg["id"]}
        if error:
            reply["error"] = error
        else:
            reply["result"] = result
        self.send(reply)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--prompt", action="append", default=[])
    parser.add_argument("agent", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = [a for a in args.agent if a != "--"]
    client = Client(argv)
    init = client.request("initialize", {
        "protocolVersion": 1,
        "clientCapabilities": {"fs": {"readTextFile": True, "writeTextFile": True},
                               "terminal": False},
    })
    print(json.dumps({"t": now_ms(), "initialize": init}), flush=True)
    session = client.request("session/new", {"cwd": os.path.abspath(args.cwd), "mcpServers": []})
    sid = session["sessionId"]
    print(json.dumps({"t": now_ms(), "session": sid}), flush=True)
    for text in args.prompt:
        result = client.request("session/prompt", {"sessionId": sid,
                                                   "prompt": [{"type": "text", "text": text}]},
                                timeout=300)
        print(json.dumps({"t": now_ms(), "prompt_result": result}), flush=True)
    client.proc.stdin.close()
    try:
        client.proc.wait(5)
    except subprocess.TimeoutExpired:
        client.proc.kill()


if __name__ == "__main__":
    main()
