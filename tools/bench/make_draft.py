#!/usr/bin/env python3
"""A draft model for speculative decoding (`--draft-model`): the first N decoder layers of a LLaMA or
Baichuan checkpoint folder, with its embeddings, final norm, output head and tokenizer (an early exit:
the same tokenizer, N/L of the layer weights to read per token). Safetensors in, one safetensors file
out; config.json gets num_hidden_layers = N.

  python tools/bench/make_draft.py --from Models/baichuan-demo --layers 2 --out tools/bench/.work/baichuan-demo-exit2
"""
import argparse
import json
import os
import re
import shutil

from safetensors import safe_open
from safetensors.numpy import save_file


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", required=True, help="checkpoint folder (safetensors, LLaMA or Baichuan layout)")
    ap.add_argument("--layers", type=int, required=True, help="decoder layers to keep, from the first")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.src, "config.json")))
    total = cfg["num_hidden_layers"]
    if not 1 <= a.layers < total:
        raise SystemExit(f"--layers must be 1–{total - 1} for {a.src} ({total} layers)")
    files = sorted(f for f in os.listdir(a.src) if f.endswith(".safetensors"))
    if not files:
        raise SystemExit(f"{a.src}: no .safetensors files")
    os.makedirs(a.out, exist_ok=True)
    layer = re.compile(r"^model\.layers\.(\d+)\.")
    kept = {}
    for f in files:
        with safe_open(os.path.join(a.src, f), framework="numpy") as t:
            for name in t.keys():
                m = layer.match(name)
                if m is None or int(m.group(1)) < a.layers:
                    kept[name] = t.get_tensor(name)
    save_file(kept, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    cfg["num_hidden_layers"] = a.layers
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for f in os.listdir(a.src):
        if f.endswith((".model", ".json")) and f not in ("config.json",) and not f.endswith(".index.json"):
            shutil.copy(os.path.join(a.src, f), a.out)
    print(f"{a.out}: {a.layers} of {total} layers, {len(kept)} tensors, "
          f"{sum(v.nbytes for v in kept.values()) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
