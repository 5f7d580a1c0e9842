#!/usr/bin/env python3
"""Side-by-side benchmark: Yanyi (int8, loads the fp16 checkpoint) vs llama.cpp (Q8_0 GGUF of the same weights).

  tools/bench/bench.py all  --checkpoint /tmp/baichuan-7b-random [--repeats 3] [--update BENCHMARKS.md]
  tools/bench/bench.py setup                      # download the llama-cpp-python sdist, build llama.cpp
  tools/bench/bench.py convert --checkpoint DIR   # GGUF Q8_0 model + random rank-8 LoRA (PEFT and GGUF)
  tools/bench/bench.py check --checkpoint DIR    # both engines give the same top-10 logits (base, LoRA)
  tools/bench/bench.py run --checkpoint DIR [--repeats N] [--update BENCHMARKS.md]
  tools/bench/bench.py serve --checkpoint DIR [--streams 1,2,4,8] [--update BENCHMARKS.md]   # both servers, N streams
  tools/bench/bench.py table RESULTS.json [--update BENCHMARKS.md]   # re-render a saved run

Everything it builds or writes lives in tools/bench/.work (git-ignored); see tools/bench/README.md.
"""
import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(HERE, ".work")
LCP_VERSION = "0.3.36"
SDIST = f"llama_cpp_python-{LCP_VERSION}.tar.gz"
SRC = os.path.join(WORK, f"llama_cpp_python-{LCP_VERSION}", "vendor", "llama.cpp")
BUILD = os.path.join(WORK, "llama-build")
BIN = os.path.join(BUILD, "bin")
TARGETS = ["llama-bench", "llama-batched-bench", "llama-quantize", "llama-server"]
NICE = ["nice", "-n", "10"]
PY = sys.executable


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


# ------------------------------------------------------------------------------------------------
# setup: llama.cpp from PyPI's llama-cpp-python sdist
# ------------------------------------------------------------------------------------------------

def setup(args):
    os.makedirs(WORK, exist_ok=True)
    dl = os.path.join(WORK, "dl")
    sdist = os.path.join(dl, SDIST)
    if not os.path.exists(sdist):
        os.makedirs(dl, exist_ok=True)
        cached = os.path.join("/tmp/lcp-dl", SDIST)  # an earlier download on this machine
        if os.path.exists(cached):
            shutil.copy(cached, sdist)
        else:
            sh([PY, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--no-build-isolation",
                "-d", dl, f"llama-cpp-python=={LCP_VERSION}"])
    if not os.path.isdir(SRC):
        log(f"unpacking {SDIST}")
        with tarfile.open(sdist) as t:
            t.extractall(WORK, filter="data")
    cmake = shutil.which("cmake", path=os.path.dirname(PY)) or "cmake"
    ninja = shutil.which("ninja", path=os.path.dirname(PY)) or "ninja"
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        sh(NICE + [cmake, "-S", SRC, "-B", BUILD, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}",
                   "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
                   "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON",
                   "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DBUILD_SHARED_LIBS=ON"])
    sh(NICE + [cmake, "--build", BUILD, "-j", str(args.jobs), "--target"] + TARGETS)
    # A 40-line probe against the same libllama: model load time and cold first-prompt time
    # (llama-bench reports neither).
    probe = os.path.join(BIN, "llama-load-probe")
    src = os.path.join(HERE, "llama_load_probe.cpp")
    if not os.path.exists(probe) or os.path.getmtime(probe) < os.path.getmtime(src):
        sh(NICE + ["c++", "-O2", "-std=c++17", src, "-I", os.path.join(SRC, "include"),
                   "-I", os.path.join(SRC, "ggml", "include"), "-L", BIN, "-lllama", "-lggml", "-lggml-base",
                   f"-Wl,-rpath,{BIN}", "-o", probe])
    for t in TARGETS + ["llama-load-probe"]:
        if not os.path.exists(os.path.join(BIN, t)):
            sys.exit(f"bench: {t} was not built in {BIN}")
    log(f"llama.cpp ready in {BIN}")



# ------------------------------------------------------------------------------------------------
# convert: the same weights as llama.cpp files
# ------------------------------------------------------------------------------------------------

def stamp(path):
    """Sizes + mtimes of a folder's files: the converted files are redone when the source changes."""
    h = hashlib.sha256()
    for fn in sorted(os.listdir(path)):
        st = os.stat(os.path.join(path, fn))
        h.update(f"{fn}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    h.update(open(os.path.join(HERE, "convert_gguf.py"), "rb").read())
    return h.hexdigest()[:16]


def paths(args):
    ckpt = os.path.abspath(args.checkpoint)
    name = os.path.basename(os.path.normpath(ckpt))
    models = os.path.join(WORK, "models")
    adapter = os.path.abspath(args.adapter) if args.adapter else os.path.join(models, f"{name}-lora-r8")
    return dict(ckpt=ckpt, name=name, adapter=adapter,
                gguf=os.path.join(models, f"{name}-q8_0.gguf"),
                lora=os.path.join(models, f"{os.path.basename(adapter)}.gguf"))


def converted(out, source_stamp, make):
    mark = out + ".stamp"
    if os.path.exists(out) and os.path.exists(mark) and open(mark).read() == source_stamp:
        log(f"{os.path.basename(out)} is up to date")
        return
    make()
    with open(mark, "w") as f:
        f.write(source_stamp)


def convert(args):
    p = paths(args)
    os.makedirs(os.path.dirname(p["gguf"]), exist_ok=True)
    with open(os.path.join(p["ckpt"], "config.json")) as f:
        layers = json.load(f)["num_hidden_layers"]
    if not args.adapter and not os.path.exists(os.path.join(p["adapter"], "adapter_config.json")):
        sh(NICE + [PY, os.path.join(REPO, "tools", "make-random-adapter"), "--arch", "baichuan-7b", "--rank", "8",
                   "--layers", str(layers), "--out", p["adapter"]])
    conv = os.path.join(HERE, "convert_gguf.py")
    converted(p["gguf"], stamp(p["ckpt"]), lambda: sh(
        NICE + [PY, conv, "model", "--checkpoint", p["ckpt"], "--out", p["gguf"]]))
    converted(p["lora"], stamp(p["adapter"]) + stamp(p["ckpt"]), lambda: sh(
        NICE + [PY, conv, "adapter", "--checkpoint", p["ckpt"], "--adapter", p["adapter"], "--out", p["lora"]]))


# ------------------------------------------------------------------------------------------------
# check: both engines compute the same model (the conversion's q/k permutation, the LoRA's split)
# ------------------------------------------------------------------------------------------------

CHECK_IDS = [1, 17, 245, 3, 981, 66, 402, 7, 523, 88, 130, 719, 45, 301, 9, 612]


def check(args):
    """All logits after CHECK_IDS from `yanyi logits` (int8) and llama.cpp (Q8_0), without and with the
    LoRA. Both round weights to 8 bits with different blocks, so the logits differ by a few percent of
    their spread (more with more layers: 2 layers 3%, 32 layers 11%), not exactly; a GGUF without
    the rotary permutation gives unrelated logits (its top 10 shares nothing with Yanyi's)."""
    import numpy as np
    p = paths(args)
    exe = yanyi_binary(args)
    ids = ",".join(map(str, CHECK_IDS))
    got = {}
    for key, lora in (("base", False), ("lora", True)):
        y = [exe, "logits", "--model", p["ckpt"], "--ids", ids, "--top", "0", "--json", "--threads", str(args.threads)]
        l = [os.path.join(BIN, "llama-load-probe"), p["gguf"], str(args.threads), "--ids", ids]
        if lora:
            y += ["--adapter", p["adapter"]]
            l += [p["lora"]]
        log("$ " + " ".join(y))
        yo = json.loads(subprocess.run(y, check=True, capture_output=True, text=True).stdout)
        log("$ " + " ".join(l))
        lo = json.loads(subprocess.run(l, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        got[key] = (np.array(yo["positions"][-1]["logits"]), np.array(lo["logits"]))

    def compare(what, y, l, max_rel):
        rel = float(np.sqrt(np.mean((y - l) ** 2)) / y.std())
        corr = float(np.corrcoef(y, l)[0, 1])
        top_y, top_l = set(np.argsort(-y)[:10]), set(np.argsort(-l)[:10])
        good = rel < max_rel
        log(f"{what}: RMS difference {rel:.3f} of the logits' std (limit {max_rel}), correlation {corr:.4f}, "
            f"{len(top_y & top_l)}/10 of the top 10 shared {'OK' if good else 'MISMATCH'}")
        return good

    ok = compare("base", *got["base"], 0.3) & compare("with LoRA", *got["lora"], 0.3)
    # The adapter's own effect: logits with it minus without, Yanyi vs llama.cpp.
    ok &= compare("LoRA shift", got["lora"][0] - got["base"][0], got["lora"][1] - got["base"][1], 0.5)
    if not ok:
        sys.exit("bench: the two engines do not compute the same model")

# ------------------------------------------------------------------------------------------------
# run: both engines, one after the other (never two models in memory at once)
# ------------------------------------------------------------------------------------------------

def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; (stdout, stderr, peak RSS bytes, wall seconds)."""
    log("$ " + " ".join(cmd))
    t = time.time()
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        sys.exit(f"bench: {cmd[0]} failed ({r.returncode})")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return r.stdout, r.stderr, int(m.group(1)) * 1024 if m else 0, wall


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def gguf_stream_bytes(path):
    """Bytes of weights a decode step reads: every tensor but the embedding (rows are looked up)."""
    import gguf
    r = gguf.GGUFReader(path)
    return sum(int(t.n_bytes) for t in r.tensors if not t.name.startswith("token_embd"))


def run_llama(p, a, res):
    bin_ = lambda t: os.path.join(BIN, t)  # noqa: E731
    threads, pp, tg, n = str(a.threads), a.prompt, a.gen, a.repeats
    out, _, rss, _ = timed([bin_("llama-bench"), "-m", p["gguf"], "-p", str(pp), "-n", str(tg), "-t", threads,
                            "-r", str(n), "-o", "json"])
    tests = json.loads(out)
    pre = next(t for t in tests if t["n_prompt"] == pp and t["n_gen"] == 0)
    dec0 = next(t for t in tests if t["n_gen"] == tg and t["n_prompt"] == 0)
    # llama-bench's tg128 starts from an empty cache; -d puts the 128 tokens after a 512-token
    # prompt (filled untimed), as Yanyi decodes them.
    out, _, rss2, _ = timed([bin_("llama-bench"), "-m", p["gguf"], "-p", "0", "-n", str(tg), "-d", str(pp),
                             "-t", threads, "-r", str(n), "-o", "json"])
    dec = next(t for t in json.loads(out) if t["n_gen"] == tg)
    res["llama"] = dict(prefill=median(pre["samples_ts"]), decode=median(dec["samples_ts"]),
                        decode_empty=median(dec0["samples_ts"]), peak_rss=max(rss, rss2),
                        prefill_samples=pre["samples_ts"], decode_samples=dec["samples_ts"],
                        decode_empty_samples=dec0["samples_ts"],
                        build=f"{tests[0].get('build_commit')} ({tests[0].get('build_number')})",
                        cpu=tests[0].get("cpu_info"), model_size=pre.get("model_size"))
    loads, ttfts, starts = [], [], []
    for _ in range(n):
        out, _, _, _ = timed([bin_("llama-load-probe"), p["gguf"], threads, str(pp), "1"])
        j = json.loads(out.strip().splitlines()[-1])
        loads.append(j["load_s"] + j["context_s"])
        starts.append(j["load_s"] + j["context_s"] + j["first_ttft_s"])
        ttfts.append(j["ttft_s"])
    res["llama"].update(load=median(loads), ttft=median(ttfts), start_to_first=median(starts),
                        load_samples=loads, ttft_samples=ttfts)
    res["llama"]["stream_bytes"] = gguf_stream_bytes(p["gguf"])
    # Chat-sized prompts: prefill of 16, 64, 128 tokens.
    if a.short_prompts:
        out, _, _, _ = timed([bin_("llama-bench"), "-m", p["gguf"], "-p", ",".join(map(str, a.short_prompts)), "-n", "0",
                              "-t", threads, "-r", str(n), "-o", "json"])
        res["llama"]["short_prefill"] = {str(t["n_prompt"]): median(t["samples_ts"]) for t in json.loads(out) if t["n_gen"] == 0}
    # LoRA: llama-bench takes no --lora; llama-batched-bench does (common args), with and without it.
    for key, extra in (("lora_base", []), ("lora", ["--lora", p["lora"]])):
        out, err, _, _ = timed([bin_("llama-batched-bench"), "-m", p["gguf"], "-t", threads, "-tb", threads,
                                "-c", str(pp + tg + 16), "-b", "512", "-ub", "512",
                                "-npp", ",".join([str(pp)] * n), "-ntg", str(tg), "-npl", "1",
                                "--output-format", "jsonl"] + extra)
        rows = [json.loads(l) for l in (out + "\n" + err).splitlines() if l.startswith("{\"n_kv_max\"")]
        if len(rows) != n:
            sys.exit(f"bench: llama-batched-bench printed {len(rows)} result rows, expected {n}")
        res["llama"][key] = dict(prefill=median([r["speed_pp"] for r in rows]),
                                 decode=median([r["speed_tg"] for r in rows]))


def yanyi_binary(a):
    if a.yanyi:
        return a.yanyi
    scratch = os.path.join(REPO, a.scratch_path)
    sh(NICE + ["swift", "build", "-c", "release", "--scratch-path", scratch, "--product", "yanyi"], cwd=REPO)
    return os.path.join(scratch, "release", "yanyi")


def run_yanyi(p, a, res, exe):
    common = [exe, "bench", "--model", p["ckpt"], "--threads", str(a.threads), "--json"]
    full = ["--prompt-tokens", str(a.prompt), "--gen-tokens", str(a.gen)]
    short = ["--prompt-tokens", "2", "--gen-tokens", "1"]   # for load time alone
    last_json = lambda out: json.loads(out.strip().splitlines()[-1])  # noqa: E731
    # First start: quantize the fp16 checkpoint, no cache read or written.
    out, _, _, _ = timed(common + short + ["--no-cache"])
    quantize_load = last_json(out)["load"]
    # Make sure the quantized-weights cache holds this checkpoint (written now if it did not).
    ls = lambda: subprocess.run([exe, "cache", "ls"], capture_output=True, text=True).stdout  # noqa: E731
    before = ls()
    out, _, _, _ = timed(common + short)
    write_load = last_json(out)["load"] if ls() != before else None
    runs = []
    for _ in range(a.repeats):
        out, _, rss, wall = timed(common + full)
        j = last_json(out)
        j["time_v_rss"] = rss
        runs.append(j)
    pick = lambda k: [r[k] for r in runs]  # noqa: E731
    res["yanyi"] = dict(prefill=median(pick("prefill")), decode=median(pick("decode")),
                        ttft=median(pick("time_to_first_token")), load=median(pick("load")),
                        quantize_load=quantize_load, cache_write_load=write_load,
                        start_to_first=median([r["load"] + r["time_to_first_token"] for r in runs]),
                        peak_rss=median(pick("peak_RSS")), time_v_rss=median(pick("time_v_rss")),
                        bandwidth=median(pick("read_bandwidth")), stream_bytes=runs[0]["weight_bytes_per_token"],
                        decode_vs_limit=median(pick("decode_vs_limit")), weights=runs[0]["weights_in_memory"],
                        prefill_samples=pick("prefill"), decode_samples=pick("decode"), load_samples=pick("load"))
    short = {}
    for pt in a.short_prompts:
        samples = []
        for _ in range(a.repeats):
            out, _, _, _ = timed(common + ["--prompt-tokens", str(pt), "--gen-tokens", "4"])
            samples.append(last_json(out)["prefill"])
        short[str(pt)] = median(samples)
    res["yanyi"]["short_prefill"] = short
    lruns = []
    for _ in range(a.lora_repeats):
        out, _, _, _ = timed(common + full + ["--adapter", p["adapter"]])
        lruns.append(last_json(out))
    res["yanyi"]["lora"] = dict(prefill=median([r["prefill"] for r in lruns]),
                                decode=median([r["decode"] for r in lruns]),
                                base_decode=median([r["decode,_no_adapter"] for r in lruns]),
                                overhead=median([r["LoRA_decode_overhead"] for r in lruns]),
                                switch=median([r["adapter_switch"] for r in lruns]))


# ------------------------------------------------------------------------------------------------
# serve: concurrent streams through `yanyi serve` and `llama-server`, each stream its own adapter
# ------------------------------------------------------------------------------------------------

def serve_adapters(p, count, layers):
    """count random rank-8 PEFT adapters (seeds 1…count) and their GGUF LoRAs, made once."""
    out = []
    conv = os.path.join(HERE, "convert_gguf.py")
    for i in range(1, count + 1):
        peft = os.path.join(WORK, "models", f"{p['name']}-lora-r8-s{i}")
        if not os.path.exists(os.path.join(peft, "adapter_config.json")):
            sh(NICE + [PY, os.path.join(REPO, "tools", "make-random-adapter"), "--arch", "baichuan-7b", "--rank", "8",
                       "--layers", str(layers), "--seed", str(i), "--out", peft])
        g = peft + ".gguf"
        converted(g, stamp(peft) + stamp(p["ckpt"]), lambda peft=peft, g=g: sh(
            NICE + [PY, conv, "adapter", "--checkpoint", p["ckpt"], "--adapter", peft, "--out", g]))
        out.append((peft, g))
    return out


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_stream(port, path, body, timeout=3600):
    """POSTs a streamed completion; (send time, [arrival time of each chunk with text], usage tokens)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.time()
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"{path}: HTTP {r.status}: {r.read()[:300]!r}")
    arrivals, usage = [], None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        j = json.loads(line[6:])
        if j.get("usage"):
            usage = j["usage"].get("completion_tokens")
        ch = j.get("choices") or []
        if ch and ch[0].get("text"):
            arrivals.append(time.time())
    c.close()
    return t0, arrivals, usage


def serve_round(port, bodies):
    """Sends the bodies at once. Per stream: TTFT, tokens, its own decode rate (tokens after its
    first ÷ their time). For the round: `aggregate` = all tokens ÷ wall time (prefills included),
    and `decode` = tokens that arrived while every stream was decoding (after the last stream's
    first token, before the first stream's last) ÷ that window: what N streams decode together.
    None when there is no such window (the server ran the streams one after another)."""
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as ex:
        got = list(ex.map(lambda b: post_stream(port, "/v1/completions", b), bodies))
    start = min(g[0] for g in got)
    end = max(g[1][-1] for g in got)
    streams = []
    for t0, arr, usage in got:
        n = usage or len(arr)
        streams.append(dict(ttft=arr[0] - t0, tokens=n, arrivals=[t - start for t in arr],
                            decode=(n - 1) / (arr[-1] - arr[0]) if n > 1 and arr[-1] > arr[0] else float("nan")))
    a, b = max(g[1][0] for g in got), min(g[1][-1] for g in got)
    inside = sum(1 for g in got for t in g[1] if a < t <= b)
    if len(got) == 1:
        decode = streams[0]["decode"]
    elif b > a and inside >= 4 * len(got):   # each stream made a few tokens in the window
        decode = inside / (b - a)
    else:
        decode = None
    return dict(aggregate=sum(s["tokens"] for s in streams) / (end - start), decode=decode, streams=streams)


def serve_prompt(i, n):
    """n fixed token ids, different for each stream (no shared prefix to reuse)."""
    import random
    rng = random.Random(1000 + i)
    return [1] + [rng.randrange(100, 20000) for _ in range(n - 1)]


@contextlib.contextmanager
def running_server(cmd, name, timeout=1800):
    """Starts `cmd --port P` (stderr to tools/bench/.work/<name>.log), yields P once GET /health
    answers 200 (the model loaded), and stops the server afterwards."""
    import urllib.request
    port = free_port()
    cmd = cmd + ["--port", str(port)]
    log("$ " + " ".join(cmd))
    with open(os.path.join(WORK, f"{name}.log"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            t = time.time()
            while True:
                if proc.poll() is not None:
                    sys.exit(f"bench: {name} exited ({proc.returncode}) before it answered")
                if time.time() - t > timeout:
                    sys.exit(f"bench: {name} did not answer /health in {timeout} s")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                        if r.status == 200:
                            break
                except Exception:
                    pass
                time.sleep(1)
            yield port
        finally:
            proc.terminate()
            proc.wait()


def serve_configs(streams):
    """(label, n, adapters): mixed (stream i its own adapter i), same (all adapter 1), one without."""
    out = [("base", 1, None)]
    for n in streams:
        out.append(("mixed", n, list(range(n))))
        if n > 1:
            out.append(("same", n, [0] * n))
    return out


def serve_engine(engine, port, a, adapters, res):
    configs = serve_configs(a.streams)
    rows = res.setdefault(engine, {})
    for _ in range(a.repeats if engine == "yanyi" else a.llama_repeats):
        for label, n, which in configs:
            bodies = []
            for i in range(n):
                b = dict(model=res["model_id"], prompt=serve_prompt(i, a.prompt), max_tokens=a.gen, temperature=0,
                         stream=True, stream_options=dict(include_usage=True), ignore_eos=True, cache_prompt=False)
                if which is not None:
                    k = which[i]
                    if engine == "yanyi":
                        b["adapters"] = [dict(name=f"adapters/s{k + 1}", scale=1.0)]
                    else:
                        b["lora"] = [dict(id=k, scale=1.0)]
                bodies.append(b)
            r = serve_round(port, bodies)
            log(f"{engine} {label} ×{n}: aggregate {r['aggregate']:.2f} tok/s, per stream "
                f"{median([s['decode'] for s in r['streams']]):.2f} tok/s, TTFT "
                f"{median([s['ttft'] for s in r['streams']]):.2f} s")
            rows.setdefault(f"{label}-{n}", []).append(r)


def serve(args):
    p = paths(args)
    with open(os.path.join(p["ckpt"], "config.json")) as f:
        layers = json.load(f)["num_hidden_layers"]
    need = max(args.streams)
    adapters = serve_adapters(p, need, layers)
    res = record(args, p, streams=args.streams, llama_repeats=args.llama_repeats)
    t0 = time.time()
    if "llama" in args.engines:
        convert(args)   # the Q8_0 GGUF, redone when the checkpoint changed
        server = os.path.join(BIN, "llama-server")
        if not os.path.exists(server):
            sys.exit(f"bench: llama-server is not built (run `{sys.argv[0]} setup` first)")
        cmd = [server, "-m", p["gguf"], "-t", str(args.threads), "-tb", str(args.threads),
               "-np", str(need), "-c", str(need * (args.prompt + args.gen + 16)), "-b", "512", "-ub", "512",
               "--lora-init-without-apply", "--no-webui", "--cache-ram", "0"]
        for _, g in adapters:
            cmd += ["--lora", g]
        with running_server(cmd, "llama-server") as port:
            res["model_id"] = os.path.basename(p["gguf"])
            warm = dict(prompt=serve_prompt(99, 8), max_tokens=2, temperature=0, stream=True)
            post_stream(port, "/v1/completions", warm)
            serve_engine("llama", port, args, adapters, res)
    if "yanyi" in args.engines:
        exe = yanyi_binary(args)
        models = os.path.join(WORK, "serve-models")
        shutil.rmtree(models, ignore_errors=True)
        os.makedirs(os.path.join(models, "adapters"))
        os.symlink(p["ckpt"], os.path.join(models, p["name"]))
        for i, (peft, _) in enumerate(adapters):
            os.symlink(peft, os.path.join(models, "adapters", f"s{i + 1}"))
        cmd = [exe, "serve", "--models", models, "--threads", str(args.threads), "--max-batch", str(need)]
        with running_server(cmd, "yanyi-serve") as port:
            res["model_id"] = p["name"]
            for i in range(len(adapters)):   # loads the base and each adapter before the clock runs
                post_stream(port, "/v1/completions", dict(model=p["name"], prompt=serve_prompt(99, 8), max_tokens=2,
                                                          temperature=0, stream=True,
                                                          adapters=[dict(name=f"adapters/s{i + 1}", scale=1.0)]))
            serve_engine("yanyi", port, args, adapters, res)
            # The same decode without the server: `yanyi bench` on the same prompt and reply lengths,
            # in turn with one stream through the (idle) server, so both see the same moments of a
            # machine whose memory bandwidth drifts from minute to minute.
            pairs = []
            for _ in range(args.repeats):
                body = dict(model=p["name"], prompt=serve_prompt(0, args.prompt), max_tokens=args.gen, temperature=0,
                            stream=True, stream_options=dict(include_usage=True), ignore_eos=True)
                served = serve_round(port, [body])["streams"][0]["decode"]
                out, _, _, _ = timed([exe, "bench", "--model", p["ckpt"], "--threads", str(args.threads), "--json",
                                      "--prompt-tokens", str(args.prompt), "--gen-tokens", str(args.gen)])
                benched = json.loads(out.strip().splitlines()[-1])["decode"]
                log(f"one stream: server {served:.2f} tok/s, yanyi bench {benched:.2f} tok/s")
                pairs.append(dict(server=served, bench=benched))
            res["yanyi_bench_pairs"] = pairs
            res["yanyi_bench_decode"] = median([x["bench"] for x in pairs])
        # The same comparison in one process (the server is down, its memory free): `yanyi bench
        # --server-pairs` serves the weights it loaded and alternates short streams through the server's
        # whole path with its own decode loop, seconds apart, which the drift between runs cannot split.
        out, _, _, _ = timed([exe, "bench", "--model", p["ckpt"], "--threads", str(args.threads), "--json",
                              "--prompt-tokens", str(args.prompt), "--gen-tokens", "16", "--server-pairs", str(args.server_pairs)])
        res["server_pairs"] = json.loads(out.strip().splitlines()[-1])["server_vs_bench"]
        log(f"in one process: server vs bench {100 * res['server_pairs']['median']:+.1f}% "
            f"(median of {len(res['server_pairs']['server'])} pairs)")
    finish(res, t0, "serve-", serve_markdown, (SERVE_BEGIN, SERVE_END), args.update)


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def serve_markdown(r):
    def cell(engine, key):
        rounds = r.get(engine, {}).get(key)
        if not rounds:
            return None
        ttfts = [s["ttft"] for x in rounds for s in x["streams"]]
        decodes = [x["decode"] for x in rounds if x.get("decode")]
        return dict(aggregate=median([x["aggregate"] for x in rounds]), decode=median(decodes) if decodes else None,
                    per_stream=median([s["decode"] for x in rounds for s in x["streams"]]),
                    p50=percentile(ttfts, 0.5), p95=percentile(ttfts, 0.95))

    engines = [e for e in ("yanyi", "llama") if e in r]
    name = {"yanyi": "Yanyi", "llama": "llama-server"}
    m = r["machine"]
    lines = [
        f"Run {r['date']}, {r['seconds'] / 60:.0f} min; Yanyi {r['yanyi_commit']} (`yanyi serve`, int8), "
        f"llama.cpp's `llama-server` (Q8_0, llama-cpp-python {LCP_VERSION} sdist, GGML_NATIVE; `-np "
        f"{max(r['streams'])}`, the adapters loaded at launch with `--lora-init-without-apply`, `lora` per request); "
        f"{r['threads']} threads; {r['repeats']} round(s) per row for Yanyi, {r.get('llama_repeats', r['repeats'])} for "
        f"llama-server (all rows in turn each round; medians).",
        f"Machine: {m.get('Model name')} (family {m.get('CPU family')}, model {m.get('Model')}), {m.get('CPU(s)')} CPUs, "
        f"{m['memory']}; {m['simd']}. Load average {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after.",
        f"Model: {os.path.basename(r['checkpoint'])}. Each stream: a {r['prompt']}-token prompt of its own (token ids), "
        f"{r['gen']} tokens (greedy, `ignore_eos`), streamed; sent together. *mixed*: stream i has random rank-8 "
        f"adapter i (W_pack + o_proj); *same*: every stream adapter 1; *base*: no adapter. Aggregate = all "
        f"tokens ÷ wall time from the first send to the last token (the prompts' prefill included); decode "
        f"together = the tokens that arrived while every stream was decoding (after the last stream's first "
        f"token, before the first stream's last) ÷ that time, \"—\" where the server ran the streams one after "
        f"another; per stream = a stream's tokens after its first ÷ their time; TTFT over every stream.",
    ] + ([f"**{r['note']}**"] if r.get("note") else []) + [""]
    head = "| streams | adapters |" + "".join(
        f" {name[e]}: decode together, tok/s | aggregate incl. prefill | per stream | TTFT p50 / p95 (s) |" for e in engines)
    if len(engines) == 2:
        head += " Yanyi / llama-server, aggregate |"
    lines += [head, "|---|---|" + "---:|" * (head.count("|") - 3)]
    keys = ["base-1"] + [f"{lab}-{n}" for n in r["streams"] for lab in ("mixed", "same") if not (lab == "same" and n == 1)]
    for key in keys:
        lab, n = key.split("-")
        row = f"| {n} | {dict(base='none', mixed='one each' if n != '1' else 'one', same='all the same')[lab]} |"
        cells = [cell(e, key) for e in engines]
        for c in cells:
            dec = f"{c['decode']:.2f}" if c and c.get("decode") else "— (one after another)"
            row += (f" {dec} | {c['aggregate']:.2f} | {c['per_stream']:.2f} | {c['p50']:.2f} / {c['p95']:.2f} |" if c else " | | | |")
        if len(engines) == 2:
            row += f" {cells[0]['aggregate'] / cells[1]['aggregate']:.2f}× |" if all(cells) else " |"
        lines.append(row)
    # The issue's ratios, Yanyi's.
    y = lambda k: cell("yanyi", k)  # noqa: E731
    if "yanyi" in r and y("mixed-1"):
        one = y("mixed-1")["decode"]
        lines.append("")
        for n in r["streams"]:
            if n > 1 and y(f"mixed-{n}") and y(f"mixed-{n}")["decode"] and y(f"same-{n}")["decode"]:
                mix, same = y(f"mixed-{n}")["decode"], y(f"same-{n}")["decode"]
                lines.append(f"- Yanyi, {n} streams with mixed adapters decode together at {mix / one:.2f}× one stream's "
                             f"rate; mixed adapters cost {100 * (same / mix - 1):.1f}% against all on one adapter.")
        pairs = r.get("yanyi_bench_pairs")
        if pairs:
            sv, bv = median([x["server"] for x in pairs]), median([x["bench"] for x in pairs])
            each = ", ".join(f"{x['server']:.2f} / {x['bench']:.2f}" for x in pairs)
            lines.append(f"- One stream through the idle server against `yanyi bench` on the same lengths, run in turn "
                         f"{len(pairs)} times (server / bench, tok/s: {each}): medians {sv:.2f} / {bv:.2f} "
                         f"({100 * (sv / bv - 1):+.1f}%); median of the pairs' differences "
                         f"{100 * median([x['server'] / x['bench'] - 1 for x in pairs]):+.1f}%.")
        sp = r.get("server_pairs")
        if sp:
            diffs = sorted(a / b - 1 for a, b in zip(sp["server"], sp["bench"]))
            within = sum(1 for d in diffs if abs(d) <= 0.03)
            lines.append(f"- In one process (`yanyi bench --server-pairs {len(diffs)} --gen-tokens 16`: the OpenAI server started on "
                         f"the weights bench loaded, one stream through its whole path against bench's decode loop, in turn, "
                         f"each first every other time): median of the pairs' differences **{100 * sp['median']:+.1f}%** "
                         f"({within} of {len(diffs)} pairs within ±3%; middle half {100 * diffs[len(diffs) // 4]:+.1f} to "
                         f"{100 * diffs[(3 * len(diffs)) // 4]:+.1f}%).")
        if not pairs and r.get("yanyi_bench_decode") and y("base-1"):
            b, s = r["yanyi_bench_decode"], y("base-1")["per_stream"]
            lines.append(f"- One stream through the server decodes at {s:.2f} tok/s; `yanyi bench` on the same lengths "
                         f"{b:.2f} tok/s ({100 * (s / b - 1):+.1f}%).")
    return "\n".join(lines) + "\n"


def machine():
    info = {}
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    for k in ("Model name", "CPU family", "Model", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "L2 cache", "L3 cache",
              "Hypervisor vendor"):
        m = re.search(rf"^{re.escape(k)}:\s*(.+)$", lscpu, re.M)
        if m:
            info[k] = m.group(1).strip()
    flags = re.search(r"^Flags:\s*(.+)$", lscpu, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    info["simd"] = " ".join(f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                                         "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_int8") if f in flags)
    with open("/proc/meminfo") as f:
        info["memory"] = f"{int(f.readline().split()[1]) / 2**20:.1f} GiB"
    info["kernel"] = platform.release()
    info["load_before"] = os.getloadavg()
    return info


def run(args):
    p = paths(args)
    for f in (p["gguf"], p["lora"]):
        if not os.path.exists(f):
            sys.exit(f"bench: {f} is missing (run `{sys.argv[0]} convert --checkpoint {args.checkpoint}` first)")
    if not os.path.exists(os.path.join(BIN, "llama-bench")):
        sys.exit(f"bench: llama.cpp is not built (run `{sys.argv[0]} setup` first)")
    exe = yanyi_binary(args)
    res = record(args, p, gguf=p["gguf"], gguf_bytes=os.path.getsize(p["gguf"]), adapter=p["adapter"], lora=p["lora"],
                 lora_repeats=args.lora_repeats)
    t0 = time.time()
    run_llama(p, args, res)
    run_yanyi(p, args, res, exe)
    finish(res, t0, "", markdown, family_markers(res), args.update)


def record(args, p, **fields):
    """What every saved run starts with: when, where, on what, how it was called; plus `fields`."""
    return dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), machine=machine(), checkpoint=p["ckpt"], threads=args.threads,
                prompt=args.prompt, gen=args.gen, repeats=args.repeats, note=args.note,
                command=" ".join(["tools/bench/bench.py"] + sys.argv[1:]),
                yanyi_commit=subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                            text=True).stdout.strip(), **fields)


def finish(res, t0, prefix, render, markers, update):
    """Saves a run's raw figures (tools/bench/.work/results/<prefix><date>.json), prints its table
    and, with --update FILE, writes it between `markers` there."""
    res["machine"]["load_after"] = os.getloadavg()
    res["seconds"] = time.time() - t0
    os.makedirs(os.path.join(WORK, "results"), exist_ok=True)
    out = os.path.join(WORK, "results", prefix + time.strftime("%Y%m%d-%H%M%S") + ".json")
    with open(out, "w") as f:
        json.dump(res, f, indent=2)
    log(f"results: {out}")
    md = render(res)
    print(md)
    if update:
        update_doc(update, md, *markers)


def markdown(r):
    y, l = r["yanyi"], r["llama"]
    bw = y["bandwidth"]
    ratio = lambda a, b: f"{a / b:.2f}×"  # noqa: E731
    gib = lambda b: f"{b / 2**30:.2f} GiB"  # noqa: E731
    rows = [
        (f"decode, {r['gen']} tokens after the prompt (tok/s, higher is better)", f"{y['decode']:.2f}", f"{l['decode']:.2f}", ratio(y["decode"], l["decode"])),
        (f"decode from an empty cache, llama-bench tg{r['gen']} (tok/s)", "", f"{l['decode_empty']:.2f}", ""),
        (f"prefill, {r['prompt']}-token prompt (tok/s, higher is better)", f"{y['prefill']:.2f}", f"{l['prefill']:.2f}", ratio(y["prefill"], l["prefill"])),
    ] + [(f"prefill, {k}-token prompt (tok/s)", f"{y['short_prefill'][k]:.2f}", f"{l['short_prefill'][k]:.2f}",
          ratio(y["short_prefill"][k], l["short_prefill"][k]))
         for k in y.get("short_prefill", {}) if k in l.get("short_prefill", {})] + [
        (f"time to first token, {r['prompt']}-token prompt (s)", f"{y['ttft']:.2f}", f"{l['ttft']:.2f}", ratio(y["ttft"], l["ttft"])),
        ("load (s); Yanyi from its quantized-weights cache", f"{y['load']:.2f}", f"{l['load']:.2f}",
         ratio(y["load"], l["load"])),
        ("load, first start: quantize the fp16 checkpoint, no cache (s)", f"{y['quantize_load']:.2f}",
         "(needs a converted GGUF)", ""),
    ] + ([("load that wrote the cache (s)", f"{y['cache_write_load']:.2f}", "", "")]
         if y.get("cache_write_load") else []) + [
        ("start to first token (s)", f"{y['start_to_first']:.2f}", f"{l['start_to_first']:.2f}",
         ratio(y["start_to_first"], l["start_to_first"])),
        ("peak RSS", gib(y["peak_rss"]), gib(l["peak_rss"]), ratio(y["peak_rss"], l["peak_rss"])),
        ("weight bytes read per decoded token", gib(y["stream_bytes"]), gib(l["stream_bytes"]),
         ratio(y["stream_bytes"], l["stream_bytes"])),
        (f"bandwidth limit at {bw / 1e9:.1f} GB/s (tok/s)", f"{bw / y['stream_bytes']:.2f}",
         f"{bw / l['stream_bytes']:.2f}", ""),
        ("decode as % of its bandwidth limit", f"{100 * y['decode'] * y['stream_bytes'] / bw:.0f}%",
         f"{100 * l['decode'] * l['stream_bytes'] / bw:.0f}%", ""),
        ("LoRA r8: decode (tok/s)", f"{y['lora']['decode']:.2f}", f"{l['lora']['decode']:.2f}",
         ratio(y["lora"]["decode"], l["lora"]["decode"])),
        ("LoRA r8: prefill (tok/s)", f"{y['lora']['prefill']:.2f}", f"{l['lora']['prefill']:.2f}",
         ratio(y["lora"]["prefill"], l["lora"]["prefill"])),
        ("LoRA r8: decode overhead vs no adapter", f"{100 * y['lora']['overhead']:.1f}%",
         f"{100 * (l['lora_base']['decode'] / l['lora']['decode'] - 1):.1f}%", ""),
    ]
    m = r["machine"]
    lines = [
        f"Run {r['date']}, {r['seconds'] / 60:.0f} min; Yanyi {r['yanyi_commit']}, llama.cpp {l['build']} "
        f"(llama-cpp-python {LCP_VERSION} sdist, GGML_NATIVE); {r['threads']} threads; "
        f"medians of {r['repeats']} repeats (LoRA: {r['repeats']} llama.cpp, {r['lora_repeats']} Yanyi).",
        f"Machine: {m.get('Model name')} (family {m.get('CPU family')}, model {m.get('Model')}), {m.get('CPU(s)')} CPUs ({m.get('Core(s) per socket')} cores × "
        f"{m.get('Thread(s) per core')} thread), L2 {m.get('L2 cache')}, L3 {m.get('L3 cache')}, {m['memory']}, "
        f"{m.get('Hypervisor vendor', 'bare metal')} guest; {m['simd']}. Load average "
        f"{m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after.",
        f"Model: {os.path.basename(r['checkpoint'])} (fp16 checkpoint, Yanyi int8 in memory {gib(y['weights'])}); "
        f"llama.cpp {os.path.basename(r['gguf'])} ({gib(r['gguf_bytes'])}). Read bandwidth measured during "
        f"the run: {bw / 1e9:.1f} GB/s.",
    ] + ([f"**{r['note']}**"] if r.get("note") else []) + [
        "",
        "| | Yanyi | llama.cpp Q8_0 | Yanyi / llama.cpp |",
        "|---|---:|---:|---:|",
    ] + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines) + "\n"


SERVE_BEGIN = "<!-- bench-serve:begin (tools/bench/bench.py serve --update rewrites this part) -->"
SERVE_END = "<!-- bench-serve:end -->"


def update_doc(path, md, begin, end):
    path = os.path.join(REPO, path) if not os.path.isabs(path) else path
    text = open(path).read() if os.path.exists(path) else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        sys.exit(f"bench: {path} has no {begin} … {end} section to rewrite")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + md + end + tail)
    log(f"updated {path}")


def family_markers(r):
    """The BENCHMARKS.md section of this run's CPU family: one table per family (Intel, AMD), each
    from one run; another family's table is kept."""
    name = (r["machine"].get("Model name") or "").lower()
    fam = "amd" if "amd" in name else "intel" if "intel" in name else "other"
    return (f"<!-- bench:begin:{fam} (tools/bench/bench.py --update rewrites this part) -->", f"<!-- bench:end:{fam} -->")


def table(args):
    with open(args.results) as f:
        r = json.load(f)
    if args.note is not None:
        r["note"] = args.note
    is_serve = "streams" in r
    md = serve_markdown(r) if is_serve else markdown(r)
    print(md)
    if args.update:
        update_doc(args.update, md, *((SERVE_BEGIN, SERVE_END) if is_serve else family_markers(r)))


def run_args(p):
    p.add_argument("--checkpoint", required=True, help="a Baichuan-7B-shaped folder from tools/make-random-checkpoint")
    p.add_argument("--adapter", help="a PEFT LoRA folder (default: a random rank-8 one made by tools/make-random-adapter)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("setup", "all"):
        p = sub.add_parser(name)
        p.add_argument("--jobs", type=int, default=2, help="build jobs for llama.cpp (default 2)")
    for name in ("convert", "check", "run", "all", "serve"):
        p = sub.choices[name] if name in sub.choices else sub.add_parser(name)
        run_args(p)
    p = sub.choices["serve"]
    p.add_argument("--streams", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 4, 8],
                   help="concurrent streams per row (default 1,2,4,8)")
    p.add_argument("--engines", default="yanyi,llama", help="yanyi, llama or both (default yanyi,llama)")
    for name in ("check", "run", "all", "serve"):
        p = sub.choices[name]
        p.add_argument("--threads", type=int, default=physical_cores())
        p.add_argument("--yanyi", help="a built yanyi binary (default: swift build -c release --scratch-path below)")
        p.add_argument("--scratch-path", default=".build", help="swift build scratch path (default .build)")
    for name in ("run", "all", "serve"):
        p = sub.choices[name]
        serving = name == "serve"
        p.add_argument("--repeats", type=int, default=1 if serving else 3,
                       help="repeats per figure; medians are reported (default 3; serve: 1 round per row)")
        p.add_argument("--lora-repeats", type=int, default=1, help="Yanyi runs with the adapter (default 1)")
        if serving:
            p.add_argument("--llama-repeats", type=int, default=1, help="serve: rounds per row for llama-server (default 1)")
            p.add_argument("--server-pairs", type=int, default=30,
                           help="serve: in-process pairs of a 16-token stream through the server and bench's loop (default 30)")
        p.add_argument("--prompt", type=int, default=32 if serving else 512)
        p.add_argument("--gen", type=int, default=32 if serving else 128)
        if not serving:
            p.add_argument("--short-prompts", type=lambda v: [int(x) for x in v.split(",") if x], default=[16, 64, 128],
                           help="also prefill these chat-sized prompts (default 16,64,128; '' for none)")
        p.add_argument("--note", help="a sentence printed above the table (e.g. what else ran on the machine)")
        p.add_argument("--update", metavar="FILE", help="rewrite the table section of FILE (e.g. BENCHMARKS.md)")
    p = sub.add_parser("table", help="print (or --update FILE with) the table of a saved results JSON")
    p.add_argument("results", help="tools/bench/.work/results/<date>.json")
    p.add_argument("--note")
    p.add_argument("--update", metavar="FILE")
    args = ap.parse_args()
    if args.cmd == "all":
        setup(args)
        convert(args)
        check(args)
        run(args)
    else:
        {"setup": setup, "convert": convert, "check": check, "run": run, "table": table, "serve": serve}[args.cmd](args)


def physical_cores():
    cores = set()
    cur = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                cur[k] = v
            elif cur:
                cores.add((cur.get("physical id"), cur.get("core id")))
                cur = {}
    if cur:
        cores.add((cur.get("physical id"), cur.get("core id")))
    return max(1, len(cores))


if __name__ == "__main__":
    main()
