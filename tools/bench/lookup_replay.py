#!/usr/bin/env python3
"""Speculative decoding (prompt lookup, or a draft model) on replayed cosplay conversations.

For each persona, one conversation of scripted turns (tools/demo/quality.py's scenes for its book, sent one
after another, so the history grows as in a real chat) is replayed twice through `yanyi chat --plain`, with
the persona's own sampling and a fixed seed: once with `prompt_lookup_num_tokens` 0 and once with K. The
replies must be identical (every token is still picked from the model's own logits with the same draws);
the script fails otherwise. Reported per persona and over all: tokens, decode forwards, guesses run and
picked, tokens per forward, and decode tok/s both ways (`/stats on` lines).

  swift build -c release
  python3 tools/bench/lookup_replay.py --yanyi .build/release/yanyi --personas sanguo/zhugeliang honglou/lindaiyu

With --draft-model DIR the second replay takes its guesses from that model (`yanyi chat --draft-model`,
K = --k, minimum probability --p-min) instead of prompt lookup; --draft-cost (a draft forward relative to
one of the big model) adds the speed-up the picks would give on a model pair with those costs.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "demo"))
from quality import SCENES  # noqa: E402  (standard library only)

STATS = re.compile(r"stats: prompt (\d+) tokens \((\d+) reused\), prefill ([\d.]+) s, first token ([\d.]+) s, "
                   r"(\d+) tokens, ([\d.]+) tok/s, (\d+) forwards(?:, (?:lookup|draft) (\d+)/(\d+) guesses picked in (\d+) forwards)?"
                   r"(?:, (\d+) draft forwards)?")


def replay(yanyi, persona, turns, k, seed, draft=None, greedy=False):
    """(replies, [stats dict per reply]) of one conversation; `draft`: (folder, K, p-min) in place of lookup."""
    home = tempfile.mkdtemp(prefix="yanyi-lookup-")
    lines = (["/stats on", f"/set seed {seed}", f"/set prompt_lookup_num_tokens {0 if draft else k}"]
             + (["/set do_sample false"] if greedy else []) + turns + ["/quit"])
    extra = ["--draft-model", draft[0], "--draft-tokens", str(draft[1]), "--draft-p-min", str(draft[2])] if draft else []
    p = subprocess.run([yanyi, "chat", "--plain", "--persona", persona, "--models", os.path.join(ROOT, "Models"),
                        "--personas", os.path.join(ROOT, "Personas"), "--sessions", os.path.join(home, "sessions")] + extra,
                       input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=3600,
                       env=dict(os.environ, XDG_DATA_HOME=home))
    if p.returncode != 0:
        sys.exit(f"{persona}: yanyi chat exited {p.returncode}: {p.stderr.strip()[-400:]}")
    replies, stats = [], []
    for line in p.stdout.splitlines():
        m = STATS.search(line)
        if m:
            g = [float(x) if x is not None else 0.0 for x in m.groups()]
            stats.append({"prompt": int(g[0]), "reused": int(g[1]), "tokens": int(g[4]), "tok_s": g[5],
                          "forwards": int(g[6]), "picked": int(g[7]), "guessed": int(g[8]), "draft_steps": int(g[9]),
                          "draft_forwards": int(g[10])})
        elif "：" in line and not line.startswith("·") and not line.startswith("["):
            replies.append(line)
    if len(stats) != len(turns):
        sys.exit(f"{persona}: {len(stats)} stats lines for {len(turns)} turns\n{p.stdout[-800:]}")
    return replies, stats


def totals(stats):
    tokens = sum(s["tokens"] for s in stats)
    decode_forwards = sum(s["forwards"] - 1 for s in stats)   # the prefill is one forward
    # tok/s per reply counts tokens after the first over the decode time: weight by those tokens
    secs = sum((s["tokens"] - 1) / s["tok_s"] for s in stats if s["tok_s"] > 0)
    return {"tokens": tokens, "decode_forwards": decode_forwards, "guessed": sum(s["guessed"] for s in stats),
            "draft_steps": sum(s["draft_steps"] for s in stats),
            "draft_forwards": sum(s["draft_forwards"] for s in stats),
            "picked": sum(s["picked"] for s in stats),
            "tok_s": sum(s["tokens"] - 1 for s in stats if s["tok_s"] > 0) / secs if secs else 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--yanyi", default=os.path.join(ROOT, ".build/release/yanyi"))
    ap.add_argument("--personas", nargs="+", default=["sanguo/zhugeliang", "sanguo/caocao", "honglou/lindaiyu",
                                                      "shuihu/wusong", "xiyou/sunwukong"])
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--k", type=int, default=4, help="guesses per forward (prompt_lookup_num_tokens)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--step-cost", type=float, default=0,
                    help="a forward of 1 + K tokens relative to one on the model you care about (`yanyi bench "
                         "--prompt-lookup K`): adds the speed-up these picks would give there")
    ap.add_argument("--draft-model", help="a draft model folder sharing the personas' model's tokenizer (in place of lookup)")
    ap.add_argument("--p-min", type=float, default=0.3, help="with --draft-model: its --draft-p-min")
    ap.add_argument("--draft-cost", type=float, default=0,
                    help="with --draft-model: a draft forward relative to a forward of the big model, for the projection")
    ap.add_argument("--greedy", action="store_true", help="greedy replies (/set do_sample false) instead of the persona's sampling")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    rows, out = [], {"cpu": cpu, "k": args.k, "personas": {}}
    for persona in args.personas:
        turns = SCENES.get(persona.split("/")[0], SCENES["assistants"])[:args.turns]
        plain_text, plain = replay(args.yanyi, persona, turns, 0, args.seed, greedy=args.greedy)
        draft = (args.draft_model, args.k, args.p_min) if args.draft_model else None
        fast_text, fast = replay(args.yanyi, persona, turns, args.k, args.seed, draft, args.greedy)
        if plain_text != fast_text:
            sys.exit(f"{persona}: replies differ with prompt lookup\n{plain_text}\n{fast_text}")
        a, b = totals(plain), totals(fast)
        out["personas"][persona] = {"plain": a, "lookup": b, "replies": plain_text}
        rows.append((persona, a, b))
        print(f"{persona}: {a} / {b}", file=sys.stderr)
    keys = ("tokens", "decode_forwards", "guessed", "picked", "draft_steps", "draft_forwards")
    A = {k: sum(r[1][k] for r in rows) for k in keys}
    B = {k: sum(r[2][k] for r in rows) for k in keys}
    out["all"] = {"plain": A, "lookup": B}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
    def per_forward(t, n):  # tokens after each reply's first, per decode forward (plain decoding: 1)
        return (t["tokens"] - n) / max(1, t["decode_forwards"])

    def projected(a, b):  # plain forwards / (forwards of one token + step_cost × forwards with guesses)
        return a["decode_forwards"] / max(1e-9, b["decode_forwards"] - b["draft_steps"] + args.step_cost * b["draft_steps"]
                                          + args.draft_cost * b["draft_forwards"])
    extra = f" at step cost {args.step_cost:.2f}" if args.step_cost else ""
    label = "draft" if args.draft_model else "lookup"
    print(f"| persona | tokens | decode forwards, plain → {label} | forwards with guesses | guesses picked | tokens per forward "
          f"| decode tok/s here, plain → {label} |" + (f" speed-up{extra} |" if extra else ""))
    print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if extra else ""))
    for persona, a, b in rows:
        print(f"| {persona} | {a['tokens']} | {a['decode_forwards']} → {b['decode_forwards']} | {b['draft_steps']} "
              f"| {b['picked']} of {b['guessed']} | {per_forward(b, args.turns):.2f} "
              f"| {a['tok_s']:.1f} → {b['tok_s']:.1f} ({b['tok_s'] / a['tok_s']:.2f}×) |"
              + (f" {projected(a, b):.2f}× |" if extra else ""))
    print(f"| **all** | {A['tokens']} | {A['decode_forwards']} → {B['decode_forwards']} | {B['draft_steps']} "
          f"| {B['picked']} of {B['guessed']} | {per_forward(B, args.turns * len(rows)):.2f} | |"
          + (f" {projected(A, B):.2f}× |" if extra else ""))
    how = (f"draft model {args.draft_model} (K = {args.k}, p-min {args.p_min}; {B['draft_forwards']} draft forwards"
           + (f", each costing {args.draft_cost} of a forward in the projection)" if args.draft_cost else ")")
           if args.draft_model else f"prompt lookup (K = {args.k})")
    print(f"CPU: {cpu}; replies identical with and without {how}, "
          + ("greedy" if args.greedy else f"the personas' sampling at seed {args.seed}"))


if __name__ == "__main__":
    main()
