#!/usr/bin/env python3
"""Aggregate decode through `yanyi serve`: C concurrent greedy completions of N tokens each (1, 2,
4, 8 at once), with the batch scheduler (default) or `--serial`. Standard library only.

    tools/bench/serve_batch.py --yanyi .build/release/yanyi --models DIR --model NAME [--tokens 32] [--serial]

NAME is the base as /v1/models lists it (its folder relative to DIR). Each size sends C requests
together and divides their completion tokens by the wall time until the last one answers (prefill
included); one warm-up request first loads the model.
"""
import argparse
import concurrent.futures
import json
import re
import subprocess
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yanyi", default=".build/release/yanyi")
    ap.add_argument("--models", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="1,2,4,8")
    ap.add_argument("--serial", action="store_true")
    a = ap.parse_args()
    cmd = [a.yanyi, "serve", "--port", "0", "--models", a.models, "--threads", str(a.threads), "--no-cache"]
    p = subprocess.Popen(cmd + (["--serial"] if a.serial else []), stdout=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)/v1", p.stdout.readline()).group(1))

        def one(i):
            body = json.dumps({"model": a.model, "prompt": "Once upon a time %d" % i, "max_tokens": a.tokens,
                               "min_tokens": a.tokens, "temperature": 0}).encode()
            req = urllib.request.Request("http://127.0.0.1:%d/v1/completions" % port, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return json.load(r)["usage"]["completion_tokens"]

        one(0)
        for c in map(int, a.sizes.split(",")):
            t = time.time()
            with concurrent.futures.ThreadPoolExecutor(c) as ex:
                tokens = sum(ex.map(one, range(c)))
            dt = time.time() - t
            print("%s, %d concurrent: %d tokens in %.2f s = %.1f tok/s" % ("serial" if a.serial else "batch", c, tokens, dt, tokens / dt),
                  flush=True)
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()
