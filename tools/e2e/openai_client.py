#!/usr/bin/env python3
"""End-to-end: `yanyi serve` on the fixture models, driven by the official `openai` package.

Starts the server on a free loopback port (--port 0) with an API key, then checks: the model
list; completions and chat, streaming and not (a stream adds up to the whole answer); the
adapter set per request (adapters / model "BASE+ADAPTER@SCALE" / lora ids), alone and mixed
concurrently; a SillyTavern-shaped Text Completion request (printed with its streamed answer);
logprobs (completions and chat, whole and streamed);
llama.cpp's native routes (/completion, /tokenize, /detokenize, /props); a stream the client
drops (the server cancels it); errors (wrong key, unknown model, bad
value, queue); and a bounded load test on loopback (--requests, --concurrency): every request
answered, none lost, the server's memory before and after. Ends with one-stream decode speed
through the server beside `yanyi bench` on the same fixture.

    tools/e2e/openai_client.py [--yanyi .build/debug/yanyi] [--requests 500] [--concurrency 32]

Installs `openai` (tools/e2e/requirements.txt) into tools/e2e/.venv on first use.
"""
import argparse
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(HERE, ".venv")
VENV_PY = os.path.join(VENV, "bin", "python")


def ensure_venv():
    """Re-runs this script inside tools/e2e/.venv, creating it first if missing."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(VENV_PY):
        print("openai_client: creating", VENV, flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([VENV_PY, "-m", "pip", "install", "-q", "-r", os.path.join(HERE, "requirements.txt")])
    os.execv(VENV_PY, [VENV_PY] + sys.argv)


ensure_venv()
import openai  # noqa: E402  (after the venv is in place)

BASE = "models/llama-trained/safetensors"
KEY = "e2e-secret"
RESULTS = {"passed": 0, "failed": 0}


def check(cond, what, detail=""):
    if cond:
        RESULTS["passed"] += 1
    else:
        RESULTS["failed"] += 1
        print("FAIL:", what, detail, flush=True)


class Server:
    def __init__(self, yanyi, extra=()):
        cmd = [yanyi, "serve", "--port", "0", "--models", os.path.join(ROOT, "Tests/Fixtures"),
               "--personas", os.path.join(ROOT, "Tests/Fixtures/chat/personas-runtime"),
               "--threads", "1", "--api-key", KEY, "--no-cache", *extra]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        if not m:
            self.p.kill()
            sys.exit("openai_client: the server did not start: %r %s" % (line, self.p.stderr.read()))
        self.port = int(m.group(1))
        self.url = "http://127.0.0.1:%d" % self.port

    def rss_kib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def get(self, path, key=KEY):
        req = urllib.request.Request(self.url + path, headers={"Authorization": "Bearer " + key})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()

    def metric(self, name):
        m = re.search(r"^%s (\S+)$" % re.escape(name), self.get("/metrics"), re.M)
        return float(m.group(1)) if m else 0.0

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return None


def sse_post(url, body, timeout=60):
    """POSTs `body` and returns the data payloads of the event stream."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY})
    events = []
    with urllib.request.urlopen(req, timeout=timeout) as r:
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                events.append(line[6:])
    return events


def basics(client, server):
    ids = [m.id for m in client.models.list().data]
    for want in (BASE, "adapters/llama-qv", "adapters/llama-all", "persona:runtime/llama-plain"):
        check(want in ids, "models list has " + want, ids)

    greedy = dict(model=BASE, prompt="Once upon a time", max_tokens=16, temperature=0)
    whole = client.completions.create(**greedy)
    text = whole.choices[0].text
    check(whole.object == "text_completion" and text, "completion text", whole)
    check(whole.usage.completion_tokens > 0 and whole.usage.prompt_tokens > 0, "completion usage", whole.usage)
    streamed = "".join(c.choices[0].text for c in client.completions.create(stream=True, **greedy) if c.choices)
    check(streamed == text, "streamed completion adds up to the whole", (streamed, text))

    chat = dict(model="persona:runtime/llama-plain", max_tokens=12, temperature=0,
                messages=[{"role": "user", "content": "Tell me a story"}])
    reply = client.chat.completions.create(**chat)
    check(reply.choices[0].message.role == "assistant" and reply.choices[0].finish_reason in ("stop", "length"),
          "chat reply", reply)
    parts = []
    for c in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **chat):
        if c.choices and c.choices[0].delta.content:
            parts.append(c.choices[0].delta.content)
        if c.usage:
            check(c.usage.completion_tokens == reply.usage.completion_tokens, "stream usage", c.usage)
    check("".join(parts) == reply.choices[0].message.content, "streamed chat adds up to the whole",
          ("".join(parts), reply.choices[0].message.content))
    two = client.chat.completions.create(n=2, seed=3, **{**chat, "temperature": 0.8})
    check([c.index for c in two.choices] == [0, 1], "n=2 gives two choices", two)


def adapters(client, server):
    """Adapter sets per request: each mixed concurrently gives what it gives alone."""
    lora = json.loads(server.get("/lora-adapters"))
    qv_id = next(a["id"] for a in lora if a["path"] == "adapters/llama-qv")
    kinds = {
        "none": dict(model=BASE),
        "qv (adapters)": dict(model=BASE, extra_body={"adapters": [{"name": "adapters/llama-qv", "scale": 1.0}]}),
        "qv (lora id)": dict(model=BASE, extra_body={"lora": [{"id": qv_id, "scale": 1.0}]}),
        "all@0.7 (model)": dict(model=BASE + "+adapters/llama-all@0.7"),
    }
    common = dict(prompt="Once upon a time", max_tokens=16, temperature=0)
    alone = {k: client.completions.create(**common, **v).choices[0].text for k, v in kinds.items()}
    check(alone["qv (adapters)"] == alone["qv (lora id)"], "adapters and lora ids name the same set", alone)
    check(len({alone["none"], alone["qv (adapters)"], alone["all@0.7 (model)"]}) == 3, "adapters change the text", alone)
    order = list(kinds) * 4
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda k: (k, client.completions.create(**common, **kinds[k]).choices[0].text), order))
    bad = [(k, t) for k, t in got if t != alone[k]]
    check(not bad, "mixed concurrent adapter sets give what each gives alone", bad)


def sillytavern(server):
    """SillyTavern's Text Completion request (createTextGenGenerationData), streamed."""
    body = {"prompt": "孔明曰：", "model": BASE, "max_new_tokens": 40, "max_tokens": 40, "temperature": 0,
            "top_p": 0.9, "typical_p": 1, "min_p": 0.05, "repetition_penalty": 1.1, "frequency_penalty": 0.2,
            "presence_penalty": 0, "top_k": 40, "min_tokens": 0, "add_bos_token": True, "stopping_strings": ["\n\n"],
            "stop": ["\n\n"], "truncation_length": 2048, "ban_eos_token": False, "skip_special_tokens": True,
            "custom_token_bans": "", "api_type": "ooba", "api_server": server.url, "seed": -1, "n": 1,
            "logit_bias": [], "cache_prompt": True, "stream": True}
    events = sse_post(server.url + "/v1/completions", body)
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    check(events and events[-1] == "[DONE]", "SillyTavern stream ends with [DONE]", events[-3:])
    check("\n\n" not in text, "stopping_strings honoured", repr(text))
    print("SillyTavern-shaped request: POST /v1/completions", json.dumps(body, ensure_ascii=False))
    print("  streamed: %d events; first: %s" % (len(events), events[0]))
    print("  last: %s | %s" % (events[-2], events[-1]))
    print("  text: %r" % text, flush=True)


def logprobs(client, server):
    """logprobs through the official client: completions (parallel lists) and chat (content
    entries), whole and streamed; greedy tokens are the most likely; every top list sorted."""
    common = dict(model=BASE, prompt="Once upon a time", max_tokens=8, temperature=0)
    c = client.completions.create(logprobs=3, **common).choices[0]
    lp = c.logprobs
    check(lp is not None and len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 8,
          "completion logprobs: parallel lists", lp)
    check("".join(lp.tokens) == c.text, "completion logprob tokens spell the text", (lp.tokens, c.text))
    for v, top in zip(lp.token_logprobs, lp.top_logprobs):
        check(v <= 0 and abs(max(top.values()) - v) < 1e-6, "greedy token is the most likely", (v, top))
    streamed = [t for ch in client.completions.create(logprobs=3, stream=True, **common)
                if ch.choices and ch.choices[0].logprobs for t in ch.choices[0].logprobs.tokens]
    check(streamed == lp.tokens, "streamed completion logprobs", (streamed, lp.tokens))

    chat = dict(model="persona:runtime/llama-plain", max_tokens=8, temperature=0,
                messages=[{"role": "user", "content": "Tell me a story"}])
    r = client.chat.completions.create(logprobs=True, top_logprobs=4, **chat).choices[0]
    content = r.logprobs.content if r.logprobs else []
    check(len(content) > 0, "chat logprobs", r)
    for e in content:
        tops = [t.logprob for t in e.top_logprobs]
        check(len(tops) == 4 and tops == sorted(tops, reverse=True) and abs(tops[0] - e.logprob) < 1e-6,
              "chat top_logprobs sorted, chosen first", e)
        check(bytes(e.bytes) == e.token.encode() or e.token.startswith("bytes:"), "chat logprob bytes", e)
    n = sum(len(ch.choices[0].logprobs.content or []) for ch in client.chat.completions.create(
        logprobs=True, top_logprobs=4, stream=True, **chat) if ch.choices and ch.choices[0].logprobs)
    check(n == len(content), "streamed chat logprobs", (n, len(content)))
    print("logprobs: first tokens %s with %s" % (lp.tokens[:3], [round(v, 3) for v in lp.token_logprobs[:3]]), flush=True)


def llamacpp(server):
    """llama.cpp's native routes, as SillyTavern's "llama.cpp" type calls them."""
    def post(path, body):
        req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())
    # without "model" these routes use the models folder's first base; here it holds several
    tokens = post("/tokenize", {"model": BASE, "content": "Once upon a time", "add_special": True})[1]["tokens"]
    check(post("/detokenize", {"model": BASE, "tokens": tokens})[1]["content"].endswith("Once upon a time"),
          "tokenize / detokenize", tokens)
    status, whole = post("/completion", {"model": BASE, "prompt": tokens, "n_predict": 8, "temperature": 0, "n_probs": 2})
    check(status == 200 and whole.get("stop") is True and whole.get("tokens_predicted") == 8, "/completion", whole)
    check(len(whole.get("completion_probabilities", [])) == 8, "/completion n_probs", whole)
    events = [json.loads(e) for e in sse_post(server.url + "/completion",
                                              {"model": BASE, "prompt": "Once upon a time", "n_predict": 8,
                                               "temperature": 0, "stream": True, "cache_prompt": True})]
    check(events and events[-1].get("stop") is True and all(e.get("stop") is False for e in events[:-1]),
          "/completion stream ends with stop: true", events[-1:])
    check("".join(e.get("content", "") for e in events) == whole.get("content"), "/completion stream adds up", events)
    status, err = post("/completion", {"model": BASE, "prompt": "x", "temperature": "hot"})
    check(status == 400 and set(err.get("error", {})) == {"code", "message", "type"}, "/completion error shape", err)
    check(json.loads(server.get("/props?model=" + BASE))["default_generation_settings"]["n_ctx"] > 0, "/props")
    print("llama.cpp /completion: %r, stop_type %s, %d completion_probabilities"
          % (whole.get("content"), whole.get("stop_type"), len(whole.get("completion_probabilities", []))), flush=True)


def cancel(client, server):
    """A stream the client drops mid-answer: the server cancels the generation at once."""
    before_c = server.metric("yanyi_generations_cancelled_total")
    before_t = server.metric("yanyi_generated_tokens_total")
    stream = client.completions.create(model=BASE, prompt="Once upon a time", max_tokens=1900, temperature=0,
                                       stream=True, extra_body={"min_tokens": 1900})
    n = 0
    for c in stream:
        n += 1
        if n == 5:
            break
    stream.close()
    deadline = time.time() + 10
    while time.time() < deadline and server.metric("yanyi_generations_cancelled_total") == before_c:
        time.sleep(0.05)
    made = server.metric("yanyi_generated_tokens_total") - before_t
    check(server.metric("yanyi_generations_cancelled_total") == before_c + 1, "dropped stream cancelled")
    check(made < 1900, "cancelled generation stopped early", made)
    print("cancel: stream dropped after %d chunks; the engine made %d of 1900 tokens" % (n, made), flush=True)


def errors(client, server):
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    try:
        bad.models.list()
        check(False, "wrong key refused")
    except openai.AuthenticationError as e:
        check(e.status_code == 401 and "API key" in str(e), "wrong key: 401", e)
    for kwargs, kind, what in [
        (dict(model="gpt-4", prompt="x"), openai.NotFoundError, "unknown model: 404"),
        (dict(model=BASE, prompt="x", temperature="hot"), openai.BadRequestError, "bad temperature: 400"),
        (dict(model=BASE, prompt="x", extra_body={"adapters": [{"name": "../../etc"}]}), openai.BadRequestError,
         "adapter path refused: 400"),
        (dict(model=BASE, prompt="x", logprobs=21), openai.BadRequestError, "logprobs above 20: 400"),
        (dict(model=BASE, prompt="x", max_tokens=100000), openai.BadRequestError, "max_tokens cap: 400"),
    ]:
        try:
            client.completions.create(**kwargs)
            check(False, what)
        except kind as e:
            body = e.body if isinstance(e.body, dict) else {}
            check(set(body) >= {"message", "type", "param", "code"}, what + " (OpenAI error object)", e.body)


def load(client, server, total, concurrency):
    """`total` requests, `concurrency` at a time, mixed kinds: every one answered."""
    def one(i):
        try:
            if i % 4 == 0:
                r = client.completions.create(model=BASE, prompt="req %d" % i, max_tokens=6, temperature=0)
                return bool(r.choices[0].finish_reason)
            if i % 4 == 1:
                s = client.completions.create(model=BASE, prompt="req %d" % i, max_tokens=6, temperature=0, stream=True)
                return any(c.choices and c.choices[0].finish_reason for c in s)
            if i % 4 == 2:
                r = client.chat.completions.create(model="persona:runtime/llama-plain", max_tokens=6,
                                                   messages=[{"role": "user", "content": "req %d" % i}])
                return r.choices[0].message is not None
            s = client.chat.completions.create(model=BASE + "+adapters/llama-qv@0.5", max_tokens=6, stream=True,
                                               messages=[{"role": "user", "content": "req %d" % i}])
            return any(c.choices and c.choices[0].finish_reason for c in s)
        except Exception as e:  # noqa: BLE001  (counted as lost)
            return repr(e)

    # Memory flat: the first half warms the server up (engines, caches, pools); the second half
    # must not grow it by more than 32 MiB.
    rss0 = server.rss_kib()
    t0 = time.time()
    half = total // 2
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(half)))
        rss_mid = server.rss_kib()
        results += list(pool.map(one, range(half, total)))
    dt = time.time() - t0
    rss1 = server.rss_kib()
    lost = [r for r in results if r is not True]
    check(not lost, "load: all %d answered" % total, lost[:3])
    check(server.metric("yanyi_requests_in_flight") == 0 and server.metric("yanyi_queue_length") == 0,
          "load: nothing left in flight or queued")
    check(rss1 - rss_mid < 32 * 1024, "load: memory flat over the second half (%d -> %d KiB)" % (rss_mid, rss1))
    print("load: %d requests, %d concurrent: %d answered, %d lost in %.1f s (%.0f req/s); server RSS %d -> %d -> %d KiB"
          % (total, concurrency, total - len(lost), len(lost), dt, total / dt, rss0, rss_mid, rss1), flush=True)
    return rss0, rss1


def speed(client, server, yanyi):
    """One stream's decode rate through the server beside `yanyi bench` on the same model."""
    n = 256
    t_first, t_last, chunks = None, None, 0
    for c in client.completions.create(model=BASE, prompt="Once upon a time", max_tokens=n, temperature=0, stream=True,
                                       extra_body={"min_tokens": n}):
        if c.choices and c.choices[0].text:
            now = time.perf_counter()
            t_first = t_first or now
            t_last = now
            chunks += 1
    whole = client.completions.with_raw_response.create(model=BASE, prompt="Once upon a time", max_tokens=n,
                                                        temperature=0, extra_body={"min_tokens": n})
    timings = json.loads(whole.http_response.text).get("timings", {})
    bench = subprocess.run([yanyi, "bench", "--model", os.path.join(ROOT, "Tests/Fixtures", BASE), "--threads", "1",
                            "--prompt-tokens", "8", "--gen-tokens", str(n), "--no-cache", "--json"],
                           capture_output=True, text=True, timeout=300)
    decode = json.loads(bench.stdout).get("decode", 0) if bench.returncode == 0 else 0
    # the same token loop (sampler chain, detokenizer) without the server
    gen = subprocess.run([yanyi, "generate", "--model", os.path.join(ROOT, "Tests/Fixtures", BASE), "--threads", "1",
                          "--prompt", "Once upon a time", "--greedy", "--max-new-tokens", str(n), "--min-new-tokens", str(n),
                          "--stats", "--no-cache"], capture_output=True, text=True, timeout=300)
    m = re.search(r"decode ([\d.]+) tok/s", gen.stderr)
    generate_rate = float(m.group(1)) if m else 0
    client_rate = (chunks - 1) / (t_last - t_first) if chunks > 1 and t_last > t_first else 0
    print("speed (one stream, %d tokens, 1 thread): through the server %.0f tok/s by the engine's timings, %.0f tok/s "
          "between the first and last chunk at the client; yanyi generate %.0f tok/s; yanyi bench decode %.0f tok/s"
          % (n, timings.get("predicted_per_second", 0), client_rate, generate_rate, decode), flush=True)


def server_pairs(yanyi):
    """`yanyi bench --server-pairs`: the server started on the weights bench loaded, streams through it
    alternating with bench's own loop (the figures are this machine's noise; that it runs is checked)."""
    pairs = subprocess.run([yanyi, "bench", "--model", os.path.join(ROOT, "Tests/Fixtures", BASE), "--threads", "1",
                            "--prompt-tokens", "8", "--gen-tokens", "16", "--no-cache", "--server-pairs", "3", "--json"],
                           capture_output=True, text=True, timeout=300)
    sp = json.loads(pairs.stdout).get("server_vs_bench", {}) if pairs.returncode == 0 else {}
    check(len(sp.get("server", [])) == 3 and all(x > 0 for x in sp["server"] + sp["bench"]),
          "yanyi bench --server-pairs streams through an in-process server", pairs.stderr.strip()[-300:])
    if sp:
        print("server pairs: 3 pairs of 16 tokens ran through an in-process server (a fixture, 1 thread: no measurement)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--yanyi", default=os.path.join(ROOT, ".build/debug/yanyi"))
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--no-speed", action="store_true", help="skip the decode-speed comparison")
    args = ap.parse_args()
    server = Server(args.yanyi)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)
        print("openai_client: openai %s against %s" % (openai.__version__, server.url), flush=True)
        basics(client, server)
        adapters(client, server)
        sillytavern(server)
        logprobs(client, server)
        llamacpp(server)
        cancel(client, server)
        errors(client, server)
        load(client, server, args.requests, args.concurrency)
        if not args.no_speed:
            speed(client, server, args.yanyi)
        health = json.loads(server.get("/health", key="none"))
        check(health.get("status") == "ok", "health without a key", health)
    finally:
        rc = server.stop()
    check(rc == 0, "server stops cleanly on SIGTERM", rc)

    # a queue of one: a second request waiting is refused with 429
    small = Server(args.yanyi, ["--max-queue", "1"])
    try:
        client = openai.OpenAI(base_url=small.url + "/v1", api_key=KEY, max_retries=0)
        try:
            client.completions.create(model=BASE, prompt="x", max_tokens=2, n=2)
            check(False, "queue limit: 429")
        except openai.RateLimitError as e:
            check(e.status_code == 429 and e.body.get("code") == "queue_full", "queue limit: 429", e.body)
    finally:
        small.stop()
    server_pairs(args.yanyi)
    print("openai_client: %d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
