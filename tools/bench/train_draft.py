#!/usr/bin/env python3
"""A draft model for glm-demo (speculative decoding, `--draft-model`): its first N of 6 layers, embeddings,
final layer norm and (tied) head, then distilled to the full model — KL(glm-demo ‖ draft) on every position
of random windows of the novels, as glm-demo was trained on (tools/demo/train_base.py's GLM stream). The same
tokenizer files; N/6 of the layer weights to read per token. Written to a folder outside git (a benchmark
artefact: Models/ keeps to its size budget).

  python tools/bench/train_draft.py --layers 2 --steps 600 --out tools/bench/.work/glm-demo-draft2

Environment: tools/fixtures/.venv with tools/demo's requirements (see tools/demo/README.md); one torch thread
unless YANYI_DEMO_THREADS says otherwise; deterministic for a given thread count.
"""
import argparse
import json
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "demo"))
import common as C  # noqa: E402
import models as M  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import train_base as T  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--init", help="continue from this draft folder (written by this script) instead of glm-demo's layers")
    ap.add_argument("--seed", type=int, default=7, help="the windows' random stream (use another one when continuing)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    folder = os.path.join(C.MODELS, "glm-demo")
    pieces = T.sp_of("chatglm").get_piece_size()
    teacher = T.reload("chatglm", folder, pieces)
    full = M.SIZES["chatglm"]["layers"]
    M.SIZES["chatglm"] = dict(M.SIZES["chatglm"], layers=a.layers)
    student = M.new_model("chatglm", pieces, 0)
    if a.init:
        keep = {k: v.float() for k, v in torch.load(os.path.join(a.init, "pytorch_model.bin"), weights_only=True).items()}
    else:
        keep = {k: v for k, v in teacher.state_dict().items()
                if not k.startswith("transformer.layers.") or int(k.split(".")[2]) < a.layers}
    missing, unexpected = student.load_state_dict(keep, strict=False)
    assert not unexpected and all(k.endswith("inv_freq") for k in missing), (missing, unexpected)
    student.lm_head.weight = student.transformer.word_embeddings.weight
    _, _, tg = C.mf.import_upstream_chatglm()
    tok = tg.ChatGLMTokenizer.from_pretrained(folder)
    stream = T.glm_stream(tok, C.NOVEL_FILES, C.training_paragraphs)
    cfg = M.config_dict("chatglm", pieces)
    data = T.GLMStream(stream, np.random.default_rng(T.SEED + a.seed), cfg["gmask_token_id"], cfg["bos_token_id"], a.ctx)
    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.0, foreach=False)
    t0 = time.time()
    agree_hist = []
    student.train()
    for step in range(1, a.steps + 1):
        ids = data.batch()["input_ids"]
        with torch.no_grad():
            t = teacher(input_ids=ids).logits.float()
        s = student(input_ids=ids).logits.float()
        loss = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean") / ids.shape[1]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, step / 50) * (1 - 0.9 * max(0, step - 0.8 * a.steps) / (0.2 * a.steps))
        opt.step()
        agree_hist.append(float((s.argmax(-1) == t.argmax(-1)).float().mean()))
        if step % 25 == 0 or step == a.steps:
            C.log(f"step {step}/{a.steps} KL {float(loss.detach()):.4f} top-1 agreement {np.mean(agree_hist[-25:]):.3f} "
                  f"({time.time() - t0:.0f} s)")
    student.eval()
    os.makedirs(a.out, exist_ok=True)
    T.save_chatglm(student, a.out)
    d = json.load(open(os.path.join(folder, "config.json")))
    d["num_layers"] = a.layers
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(d, f, indent=2)
    for f in os.listdir(folder):
        if f not in ("config.json", "pytorch_model.bin"):
            shutil.copy(os.path.join(folder, f), a.out)
    C.log(f"{a.out}: {a.layers} of {full} layers, {a.steps} steps, last 25 steps' top-1 agreement "
          f"{np.mean(agree_hist[-25:]):.3f}, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
