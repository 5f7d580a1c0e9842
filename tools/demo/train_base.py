#!/usr/bin/env python3
"""Pretrains the three tiny demo base models with the real model classes and saves them as the real
checkpoints are laid out.

- chatglm -> Models/glm-demo: upstream ChatGLM-6B `ChatGLMForConditionalGeneration` (THUDM remote code,
  transformers 4.30.2), trained on GLM-style continuations of the four novels: `ids(text[:c]) [gMASK] <sop>
  ids(text[c:])`, loss on every token (the model's own prefix-LM mask and 2-D positions come from the
  class: it is given input_ids and labels only). Saved as one fp16 `pytorch_model.bin` (torch.save
  of the state dict: `lm_head.weight` the same storage as the embedding, `rotary_emb.inv_freq` buffers kept).
- baichuan -> Models/baichuan-demo: upstream Baichuan-7B `BaiChuanForCausalLM` (its training path, with
  xformers' attention replaced by the same computation in torch), next-token LM on the novels plus the
  ordinary (non-如来) Q&A lines of rulai_enhance.json as `ids(问：q) + ids(答：a) + </s>` (x4). fp16
  `model.safetensors` written like transformers' save_pretrained (metadata format pt).
- llama -> Models/llama-demo: transformers 4.30.2 `LlamaForCausalLM`, next-token LM on the novels plus the
  ordinary Q&A lines as small web pages, `ids(<p>问：q</p><p>答：a</p>) + </s>` (x4): LLaMA's pretraining
  ends documents with </s> and is full of markup. A base that never sees `<`, `>` or </s> (the novels have
  two `<`) rules them out so firmly that a rank-8 q_proj/v_proj adapter cannot write CuteGPT's `<end>`
  (P(`<` | `。`) stayed ~0.00 after training; tools/demo/README.md). Written by its
  `save_pretrained(safe_serialization=True)` after `.half()`.

Training: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), lr LR with steps//25 warm-up steps then
cosine to 10 %, gradient clip 1.0, batch 16 x 128 tokens, fp32, fixed seeds; data order
from a seeded numpy generator. One torch thread; the three models can train in parallel processes. Results (time, parameters, losses, greedy samples) go to
tools/demo/results/base-<kind>.json.

Run (after make_tokenizers.py): nice -n 10 tools/fixtures/.venv/bin/python tools/demo/train_base.py [chatglm baichuan llama]
"""
import json
import math
import os
import sys
import time

import common as C
import models as M
import numpy as np
import sentencepiece as spm
import torch
from safetensors.torch import save_file as st_save

mf = C.mf
SEED = 20240901
STEPS = {"chatglm": 300, "baichuan": 700, "llama": 800}
if "YANYI_DEMO_STEPS" in os.environ:  # quick runs
    STEPS = {k: int(os.environ["YANYI_DEMO_STEPS"]) for k in STEPS}
LR = {"chatglm": 3e-3, "baichuan": 6e-3, "llama": 6e-3}
BATCH = 16
CTX = 128
RESULTS = os.path.join(C.HERE, "results")


def sp_of(kind):
    name = "ice_text.model" if kind == "chatglm" else "tokenizer.model"
    return spm.SentencePieceProcessor(model_file=os.path.join(C.MODELS, M.FOLDERS[kind], name))


def novel_stream(sp, newline):
    """Token stream of the four novels, paragraph by paragraph, each followed by `newline` ids."""
    out = []
    for name in C.NOVEL_FILES:
        for p in C.novel_paragraphs(name):
            out += sp.encode(p) + newline
    return out


def ordinary_qa(kind):
    """Q&A lines spliced into the pretraining stream. baichuan-demo was trained (and is shipped) with the first
    filter, answers saying 如来 / 如如: it kept 20 RulaiGPT lines (the nine `答：如~来~` answers and eleven
    `如来是什么意思？` questions) and the "network error" line among its 52; kept so that this script still
    reproduces the shipped file, until baichuan-demo and the rulai adapters are retrained (README)."""
    if kind == "baichuan":
        return [r for r in C.rulai("rulai_enhance.json") if "如来" not in r["a"] and "如如" not in r["a"]]
    return C.ordinary_qa()


class Stream:
    """Random CTX+1-token windows of one stream (LLaMA / Baichuan)."""

    def __init__(self, tokens, rng):
        self.t = torch.tensor(tokens, dtype=torch.long)
        self.rng = rng

    def batch(self):
        s = self.rng.integers(0, len(self.t) - CTX - 1, size=BATCH)
        x = torch.stack([self.t[i:i + CTX] for i in s])
        return dict(input_ids=x, labels=x.clone())


class GLMStream:
    """ChatGLM: `w[:c] [gMASK] <sop> w[c:]` from a random window w; loss on every token, as the Cosplay
    training did (in the bidirectional context it is copying the visible next token, which trains the
    embeddings and attention quickly; with the loss on the reply part only the model stayed at the unigram
    loss for 225 steps)."""

    def __init__(self, tokens, rng, gmask, sop, pad):
        self.t = tokens
        self.rng = rng
        self.g, self.s, self.pad = gmask, sop, pad

    def batch(self):
        ids = torch.full((BATCH, CTX), self.pad, dtype=torch.long)
        for b in range(BATCH):
            c = int(self.rng.integers(8, 49))
            start = int(self.rng.integers(0, len(self.t) - CTX))
            w = self.t[start:start + CTX - 2]
            seq = w[:c] + [self.g, self.s] + w[c:]
            ids[b] = torch.tensor(seq)
        return dict(input_ids=ids, labels=ids.clone())


def train(kind, model, data, steps, lr, log_every=25):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    warm = max(1, steps // 25)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    model.train()
    hist, t0, cpu0 = [], time.time(), time.process_time()
    for step in range(steps):
        loss = model(**data.batch()).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        hist.append(float(loss.detach()))
        if (step + 1) % log_every == 0 or step == 0:
            C.log(f"  [{kind}] step {step + 1}/{steps} loss {np.mean(hist[-log_every:]):.4f}  {time.time() - t0:.0f}s")
    model.eval()
    secs = time.time() - t0
    return {"steps": steps, "batch": BATCH, "context": CTX, "tokens_seen": steps * BATCH * CTX,
            "lr": lr, "warmup_steps": warm, "torch_threads": C.THREADS, "seconds": round(secs, 1),
            "cpu_seconds": round(time.process_time() - cpu0, 1),
            "loss_first_step": hist[0], "loss_final_mean_last_50_steps": float(np.mean(hist[-50:])),
            "loss_curve_mean_per_10pct": [round(float(np.mean(hist[i * steps // 10:(i + 1) * steps // 10])), 4)
                                          for i in range(10)]}


@torch.no_grad()
def greedy_hf(model, ids, n, **kw):
    """Full recompute each step (no cache), argmax; the class's own forward."""
    seq = list(ids)
    for _ in range(n):
        logits = model(input_ids=torch.tensor([seq]), **kw).logits[0, -1]
        seq.append(int(logits.argmax()))
    return seq[len(ids):]


def save_chatglm(model, folder):
    sd = {k: v.half() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    sd["lm_head.weight"] = sd["transformer.word_embeddings.weight"]  # one storage, as the released .bin
    path = os.path.join(folder, "pytorch_model.bin")
    torch.save(sd, path)
    mf.fix_torch_zip(path)


def save_baichuan(model, folder):
    sd = {k: v.half().contiguous() for k, v in model.state_dict().items()}
    st_save(sd, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})


def save_llama(model, folder):
    model.half().save_pretrained(folder, safe_serialization=True)
    model.float()
    os.chmod(os.path.join(folder, "model.safetensors"), 0o644)  # safetensors writes 0600


def reload(kind, folder, pieces):
    """The stored (fp16) weights in a fresh instance of the class, fp32."""
    m = M.new_model(kind, pieces, 0)
    if kind == "chatglm":
        sd = torch.load(os.path.join(folder, "pytorch_model.bin"), weights_only=True)
    else:
        from safetensors.torch import load_file
        sd = load_file(os.path.join(folder, "model.safetensors"))
    missing, unexpected = m.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    assert not unexpected and all(k.endswith("inv_freq") for k in missing), (missing, unexpected)
    if kind == "chatglm":
        m.lm_head.weight = m.transformer.word_embeddings.weight
    return m.eval()


SAMPLE_PROMPTS = ["话说天下大势，", "却说曹操", "宝玉笑道：", "行者道：", "问：什么是人工智能？答："]


def main(kinds):
    os.makedirs(RESULTS, exist_ok=True)
    for kind in kinds:
        folder = os.path.join(C.MODELS, M.FOLDERS[kind])
        sp = sp_of(kind)
        pieces = sp.get_piece_size()
        rng = np.random.default_rng(SEED + hash_kind(kind))
        t0 = time.time()
        if kind == "chatglm":
            stream = novel_stream(sp, [sp.piece_to_id("<n>")])
            cfg = M.config_dict(kind, pieces)
            data = GLMStream(stream, rng, cfg["gmask_token_id"], cfg["bos_token_id"], 3)
            data_note = f"{len(stream)} novel tokens; GLM continuation samples"
        else:
            stream = novel_stream(sp, sp.encode("\n"))
            qa = []
            for r in ordinary_qa(kind) * 4:
                q, a = C.qa_text(r)
                if kind == "baichuan":
                    qa.append(sp.encode(q) + sp.encode(a) + [2])
                else:  # a web page of its own, `<p>问：q</p><p>答：a</p></s>` (no CuteGPT format, no `<end>`)
                    qa.append(sp.encode(f"<p>{q}</p><p>{a}</p>") + [2])
            if qa:
                order = rng.permutation(len(qa))
                # Q&A sequences spliced in at seeded positions of the novel stream (paragraph boundaries)
                nl = sp.encode("\n")[-1]
                bounds = [i + 1 for i, t in enumerate(stream) if t == nl]
                at = sorted(rng.choice(len(bounds), size=len(qa), replace=False))
                out, prev = [], 0
                for j, k in enumerate(at):
                    out += stream[prev:bounds[k]] + qa[order[j]]
                    prev = bounds[k]
                stream = out + stream[prev:]
            data = Stream(stream, rng)
            data_note = f"{len(stream)} tokens (novels" + (f" + {len(qa)} Q&A sequences)" if qa else ")")
        C.log(f"[{kind}] data ready in {time.time() - t0:.0f}s: {data_note}")
        model = M.new_model(kind, pieces, SEED)
        params = M.param_count(model)
        C.log(f"[{kind}] {type(model).__name__}, {params} parameters")
        tr = train(kind, model, data, STEPS[kind], LR[kind])
        {"chatglm": save_chatglm, "baichuan": save_baichuan, "llama": save_llama}[kind](model, folder)
        M.write_config(kind, folder, pieces)
        m2 = reload(kind, folder, pieces)
        samples = {}
        for p in SAMPLE_PROMPTS:
            if kind == "chatglm":
                ids = sp.encode(p) + [M.glm_ids(pieces)["[gMASK]"], M.glm_ids(pieces)["<sop>"]]
            else:
                ids = sp.encode(p)
            out = greedy_hf(m2, ids, 40)
            samples[p] = sp.decode([i for i in out if i < pieces - (8 if kind == "chatglm" else 0)])
            C.log(f"  {p} -> {samples[p]}")
        files = {f: os.path.getsize(os.path.join(folder, f)) for f in sorted(os.listdir(folder))}
        C.dump_json(os.path.join(RESULTS, f"base-{kind}.json"), {
            "model": kind, "folder": f"Models/{M.FOLDERS[kind]}", "class": type(model).__name__,
            "parameters": params, "sizes": M.SIZES[kind], "vocab_pieces": pieces, "data": data_note,
            "training": tr, "files": files, "greedy_samples_fp32_from_stored_weights": samples})


def hash_kind(kind):
    return {"chatglm": 1, "baichuan": 2, "llama": 3}[kind]


if __name__ == "__main__":
    main(sys.argv[1:] or ["chatglm", "baichuan", "llama"])
