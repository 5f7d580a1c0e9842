#!/usr/bin/env python3
"""Reply quality of the shipped personas on the shipped demo models, as a user meets them.

Starts `yanyi serve` on the repository's Personas/ and Models/ and asks every shipped persona the
same 20 fixed scenes (a 三国 council, a 大观园 gathering, a question to an assistant …), one
request each, seeded by the scene's number, with the persona's own sampling exactly as shipped
(the request sets nothing but the seed and the messages). For each persona it reports:

  turn    share of replies that end their turn within max tokens (finish_reason "stop": EOS,
          <eop>, <end> or a stop string; a cosplay reply must also close its quote)
  run≤3   share of replies in which no character repeats more than 3 times in a row
  dist2   distinct-2: different character bigrams / all bigrams, over the persona's replies
          together (it falls as replies are added); the summary row gives the mean over personas
  d2/r    the same within each reply, averaged over replies
  cjk     share of CJK characters among the replies' non-space characters

and RulaiGPT's answer to the seed's question 到底来没来？ (whether it says 如来). First, for each demo base,
the held-out nats per character: `yanyi eval --ctx 256 --json` (int8) on the one chapter of each novel that
the default base never saw in training (Tests/Fixtures/text/held-out, written by train_base.py), the four
chapters' nats summed over their characters.
Standard library only; `--json FILE` writes every reply too. Example:

  swift build -c release
  python3 tools/demo/quality.py --yanyi .build/release/yanyi --markdown
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The scenes, shared with DemoPersonaTests (which asks the same ones, with the same seeds).
with open(os.path.join(ROOT, "Tests", "Fixtures", "chat", "quality-scenes.json"), encoding="utf-8") as _f:
    _fixture = json.load(_f)
SCENES = _fixture["scenes"]
RULAI_QUESTION = _fixture["rulai_question"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(port, body, timeout=600):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def is_cjk(ch):
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF \
        or ch in "“”‘’"


def longest_run(text):
    best, run, prev = 0, 0, None
    for ch in text:
        run = run + 1 if ch == prev else 1
        prev = ch
        best = max(best, run)
    return best


def metrics(replies):
    n = len(replies)
    ended = sum(1 for r in replies if r["ended"])
    short_runs = sum(1 for r in replies if longest_run(r["text"]) <= 3)
    bigrams = [t[i:i + 2] for t in (r["text"] for r in replies) for i in range(len(t) - 1)]
    chars = [c for r in replies for c in r["text"] if not c.isspace()]
    per_reply = [len({t[i:i + 2] for i in range(len(t) - 1)}) / (len(t) - 1) for t in (r["text"] for r in replies) if len(t) > 1]
    return {
        "replies": n,
        "turn": ended / n if n else 0,
        "run3": short_runs / n if n else 0,
        "dist2": len(set(bigrams)) / len(bigrams) if bigrams else 0,
        "dist2_reply": sum(per_reply) / len(per_reply) if per_reply else 0,
        "cjk": sum(1 for c in chars if is_cjk(c)) / len(chars) if chars else 0,
    }


HELD_OUT = ["sanguo", "shuihu", "honglou", "xiyou"]
BASES = ["glm-demo", "baichuan-demo", "llama-demo"]


def held_out(yanyi, base):
    """(nats per character over the four held-out chapters, {novel: nats per character}) of one base."""
    nats, chars, per = 0.0, 0, {}
    for novel in HELD_OUT:
        text = os.path.join(ROOT, "Tests", "Fixtures", "text", "held-out", novel + ".txt")
        r = json.loads(subprocess.run([yanyi, "eval", "--model", os.path.join(ROOT, "Models", base), "--text", text,
                                       "--ctx", "256", "--json", "--no-cache"], capture_output=True, text=True, check=True).stdout)
        per[novel] = r["nats_per_char"]
        nats += r["nats_per_char"] * r["characters"]
        chars += r["characters"]
    return nats / chars, per


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--yanyi", default=os.path.join(ROOT, ".build/release/yanyi"))
    ap.add_argument("--scenes", type=int, default=20, help="scenes per persona (≤ 20)")
    ap.add_argument("--personas", nargs="*", help="persona ids (default: every shipped one)")
    ap.add_argument("--personas-dir", default=os.path.join(ROOT, "Personas"), help="persona folder (default: the shipped one)")
    ap.add_argument("--json", help="write every reply and the figures here")
    ap.add_argument("--seed-offset", type=int, default=0, help="scene i is asked with seed i + 1 + this (other draws, same scenes)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()

    port = free_port()
    bases = {b: held_out(args.yanyi, b) for b in BASES}
    data_home = tempfile.TemporaryDirectory(prefix="yanyi-quality-")     # no sessions of the user's touched
    env = dict(os.environ, XDG_DATA_HOME=data_home.name)
    server = subprocess.Popen([args.yanyi, "serve", "--port", str(port), "--personas", args.personas_dir,
                               "--models", os.path.join(ROOT, "Models")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        server.stdout.readline()          # "yanyi serve: http://… — …" once it listens
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as r:
            ids = [m["id"] for m in json.load(r)["data"] if m["id"].startswith("persona:")]
        personas = [i[len("persona:"):] for i in ids if not args.personas or i[len("persona:"):] in args.personas]
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
        out = {"cpu": cpu, "held_out_nats_per_char": {b: {"all": v[0], **v[1]} for b, v in bases.items()}, "personas": {}}
        t0 = time.time()
        for pid in sorted(personas):
            group = pid.split("/")[0]
            scenes = SCENES.get(group, SCENES["assistants"])[:args.scenes]
            cosplay = group in ("sanguo", "honglou", "shuihu", "xiyou")
            replies = []
            for i, scene in enumerate(scenes):
                r = post(port, {"model": "persona:" + pid, "messages": [{"role": "user", "content": scene}],
                                 "seed": i + 1 + args.seed_offset})
                c = r["choices"][0]
                text = c["message"]["content"]
                ended = c["finish_reason"] == "stop" and (not cosplay or text.rstrip().endswith("”"))
                replies.append({"scene": scene, "text": text, "finish": c["finish_reason"], "ended": ended})
            out["personas"][pid] = {"metrics": metrics(replies), "replies": replies}
            print(f"{pid}: {out['personas'][pid]['metrics']}", file=sys.stderr)
        if "assistants/rulai" in personas:
            r = post(port, {"model": "persona:assistants/rulai", "messages": [{"role": "user", "content": RULAI_QUESTION}], "seed": 1})
            out["rulai"] = r["choices"][0]["message"]["content"]
        everything = [r for p in out["personas"].values() for r in p["replies"]]
        out["all"] = metrics(everything)
        out["all"]["dist2"] = sum(p["metrics"]["dist2"] for p in out["personas"].values()) / max(1, len(out["personas"]))
        out["seconds"] = round(time.time() - t0, 1)
    finally:
        server.terminate()
        server.wait()

    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
    rows = [("persona", "turn", "run≤3", "dist2", "d2/r", "cjk")]
    for pid, p in sorted(out["personas"].items()):
        m = p["metrics"]
        rows.append((pid, f"{m['turn']:.0%}", f"{m['run3']:.0%}", f"{m['dist2']:.2f}", f"{m['dist2_reply']:.2f}", f"{m['cjk']:.0%}"))
    m = out["all"]
    rows.append((f"**all {m['replies']} replies**", f"**{m['turn']:.0%}**", f"**{m['run3']:.0%}**", f"**{m['dist2']:.2f}** (mean)",
                 f"**{m['dist2_reply']:.2f}**", f"**{m['cjk']:.0%}**"))
    held = [("base", "held-out nats/char", *HELD_OUT)]
    for b, v in out["held_out_nats_per_char"].items():
        held.append((b, f"**{v['all']:.3f}**", *(f"{v[n]:.3f}" for n in HELD_OUT)))
    if args.markdown:
        print("| " + " | ".join(held[0]) + " |\n|---|---:|" + "---:|" * len(HELD_OUT))
        for r in held[1:]:
            print("| " + " | ".join(r) + " |")
        print()
    else:
        for r in held:
            print("  ".join(f"{c:<24}" if i == 0 else f"{c:>10}" for i, c in enumerate(r)))
        print()
    if args.markdown:
        print("| " + " | ".join(rows[0]) + " |\n|---|---:|---:|---:|---:|---:|")
        for r in rows[1:]:
            print("| " + " | ".join(r) + " |")
    else:
        for r in rows:
            print("  ".join(f"{c:<24}" if i == 0 else f"{c:>8}" for i, c in enumerate(r)))
    if "rulai" in out:
        print(f"\nRulaiGPT, {RULAI_QUESTION} → {out['rulai']}  ({'如来' if '如来' in out['rulai'] else 'no 如来'})")
    print(f"CPU: {out['cpu']}; {out['seconds']} s")


if __name__ == "__main__":
    main()
