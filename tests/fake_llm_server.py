#!/usr/bin/env python3
"""A fake LLM API server for kbrun's tests (stdlib only).

Serves POST /v1/chat/completions (OpenAI-compatible) and POST /v1/messages
(Anthropic) on 127.0.0.1, on an ephemeral port.

Usage:
  fake_llm_server.py --scenario S.json --port-file PORT [--log requests.jsonl] [--max-seconds 300]

  --port-file    written (atomically) with the port number once the server listens
  --log          every POST is appended as one JSON line:
                 {"path": ..., "headers": {...}, "auth_present": bool, "body": <JSON body, or the raw
                  text if it is not JSON>, "prompt": <text the rules match against>, "rule": <index or null>,
                  "time": <unix time>}
                 Authorization / x-api-key / api-key values are never logged; "auth_present" says
                 whether one of them was sent.
  --max-seconds  the server exits by itself after this long, so a crashed test leaves nothing behind

Scenario file: a JSON list of rules. For each POST the rules are tried in order; the first rule
that applies answers it:
  {
    "match": "substring",     optional: the request's prompt must contain it (the prompt is every
                              message content and the system text, joined with newlines)
    "times": N,               optional: the rule applies to its first N matching requests only
    "status": 200,            optional, default 200
    "headers": {"Retry-After": "1"},   optional response headers
    "body": "...",            the raw response body (a JSON value other than a string is dumped)
    "response_text": "...",   or: text wrapped as an OpenAI chat completion, or as an Anthropic
                              message when the path ends with /messages
    "usage": {"prompt_tokens": 11, "completion_tokens": 22},  optional, for response_text (default:
                              word counts of the prompt and of the text); for /messages they are
                              reported as input_tokens / output_tokens
    "delay_s": 0              optional: wait this long before answering
  }
A request no rule applies to gets HTTP 400 with an error message saying so.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_HEADERS = {"authorization", "x-api-key", "api-key"}


def prompt_text(body):
    """Every message content (and the system text) joined: what "match" looks in."""
    if not isinstance(body, dict):
        return body if isinstance(body, str) else ""
    parts = []
    system = body.get("system")
    if isinstance(system, str):
        parts.append(system)
    elif isinstance(system, list):
        parts.extend(b.get("text", "") for b in system if isinstance(b, dict))
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(parts)


def wrap_openai(text, model, usage):
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[0] + usage[1]},
    }


def wrap_anthropic(text, model, usage):
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


class State:
    def __init__(self, rules, log_path):
        self.rules = rules
        self.used = [0] * len(rules)
        self.lock = threading.Lock()
        self.log_path = log_path

    def pick(self, prompt):
        """Index of the rule that answers this request (counting it), or None."""
        with self.lock:
            for i, rule in enumerate(self.rules):
                if "match" in rule and rule["match"] not in prompt:
                    continue
                if "times" in rule and self.used[i] >= int(rule["times"]):
                    continue
                self.used[i] += 1
                return i
        return None

    def log(self, entry):
        if not self.log_path:
            return
        with self.lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main()

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def send(self, status, body_bytes, headers):
        self.send_response(status)
        names = {k.lower() for k in headers}
        if "content-type" not in names:
            self.send_header("Content-Type", "application/json")
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body_bytes)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body_bytes)
        self.wfile.flush()

    def do_GET(self):
        self.send(404, b'{"error": {"message": "fake_llm_server: only POST is served"}}', {})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        path = self.path.split("?", 1)[0]
        prompt = prompt_text(body)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in SECRET_HEADERS}
        auth_present = any(k.lower() in SECRET_HEADERS for k in self.headers.keys())
        anthropic = path.endswith("/messages")
        if not (anthropic or path.endswith("/chat/completions")):
            self.state.log({"path": path, "headers": headers, "auth_present": auth_present, "body": body,
                            "prompt": prompt, "rule": None, "time": time.time()})
            self.send(404, json.dumps({"error": {"message": "fake_llm_server: no such endpoint " + path}}).encode(), {})
            return
        index = self.state.pick(prompt)
        self.state.log({"path": path, "headers": headers, "auth_present": auth_present, "body": body,
                        "prompt": prompt, "rule": index, "time": time.time()})
        if index is None:
            error = {"error": {"message": "fake_llm_server: no scenario rule matched this request"}}
            self.send(400, json.dumps(error).encode(), {})
            return
        rule = self.state.rules[index]
        if rule.get("delay_s"):
            time.sleep(float(rule["delay_s"]))
        if "response_text" in rule:
            text = rule["response_text"]
            usage = rule.get("usage") or {}
            counts = (int(usage.get("prompt_tokens", len(prompt.split()))),
                      int(usage.get("completion_tokens", len(text.split()))))
            model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
            payload = (wrap_anthropic if anthropic else wrap_openai)(text, model, counts)
            out = json.dumps(payload)
        else:
            out = rule.get("body", "")
            if not isinstance(out, str):
                out = json.dumps(out)
        try:
            self.send(int(rule.get("status", 200)), out.encode("utf-8"), rule.get("headers") or {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to do


def main():
    ap = argparse.ArgumentParser(description="Fake OpenAI/Anthropic API server for tests")
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", default="")
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()

    with open(args.scenario, encoding="utf-8") as f:
        rules = json.load(f)
    if not isinstance(rules, list):
        sys.exit("fake_llm_server: the scenario must be a JSON list of rules")
    Handler.state = State(rules, args.log)
    # A deep listen backlog: with the default (5), concurrent clients beyond it wait for a SYN retry (1 s).
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True

    # Exit unconditionally after --max-seconds, even with requests in flight.
    timer = threading.Timer(args.max_seconds, lambda: os._exit(0))
    timer.daemon = True
    timer.start()

    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
