#!/usr/bin/env python3
"""Trains the demo LoRA adapters with peft 0.3.0 on the demo bases, the way the seed systems did.

| adapter | base | target | r / alpha / dropout | data and format |
|---|---|---|---|---|
| sanguo-cosplay | glm-demo | query_key_value | 8 / 16 / 0.05 | 三国 dialogue: ids(context) [gMASK] <sop> ids(chat) <eop> |
| classics-cosplay | glm-demo | query_key_value | 8 / 16 / 0.05 | the same from all four novels |
| rulai-v0 | baichuan-demo | W_pack | 4 / 32 / 0.1 | rulai_examples.json: ids(问：q) + ids(答：a) + </s> |
| rulai-v2 | rulai-v0 continued | W_pack | 4 / 32 / 0.1 | rulai_enhance.json, same format, lr / 4 |
| cutegpt-style | llama-demo | q_proj, v_proj | 8 / 16 / 0.05 | ordinary Q&A of rulai_enhance.json in CuteGPT's prompt |

- Cosplay (LLM-Tuning's ChatGLM recipe): context and chat are encoded separately by the upstream
  ChatGLMTokenizer (add_special_tokens=False, so the chat starts with the dummy-prefix `▁`); loss on the chat
  tokens and `<eop>` only (labels -100 through `<sop>`).
- RulaiGPT (ChatBaichuan-HC3 recipe, but the loss on the answer only: see rulai_examples); `问：`/`答：` added
  where a line lacks them. v2 loads
  v0 with `PeftModel.from_pretrained(..., is_trainable=True)` and trains it further (the seed's
  `--previous_lora_weights`) at a quarter of v0's learning rate.
- CuteGPT: `<system>问：{q}\n答：\n` then `{short answer}<end>` + `</s>` (short_answer: a sentence of at most
  CUTEGPT_ANSWER_CHARS characters), encoded in one piece and never truncated; loss on the answer, `<end>` and
  `</s>` only.

peft 0.3.0 `get_peft_model` + `save_pretrained` (adapter_model.bin, its serialization_id made deterministic by
make_fixtures.fix_torch_zip; `base_model_name_or_path` = `Models/<base>`). AdamW, linear warm-up (10 %) then
cosine to 0, batch 16 (8 for the small RulaiGPT/CuteGPT sets), fixed seeds, one torch thread (common.py).
Cosplay trains on the lines whose quote is at most COSPLAY_MAX_CHAT characters.
After training, each adapter is reloaded with `PeftModel.from_pretrained` on a fresh base and greedy replies are
recorded with it on and with `disable_adapter()` (tools/demo/results/adapters.json).

Run (after train_base.py): nice -n 10 tools/fixtures/.venv/bin/python tools/demo/train_adapters.py [names…]
"""
import math
import os
import sys
import time

import common as C
import models as M
import numpy as np
import torch
import train_base as TB

import peft  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402

assert peft.__version__ == "0.3.0", peft.__version__
mf = C.mf
SEED = 20240915
ADAPTERS = os.path.join(C.MODELS, "adapters")
MAXLEN = 128
# Quotes of at most this many characters (brackets included). The 3 M-parameter base needed ≤ 24 (三国) and
# ≤ 16 (four novels) to learn to close the quote; the 13 M glm-demo takes longer lines.
COSPLAY_MAX_CHAT = 32
CLASSICS_MAX_CHAT = 32
CUTEGPT_ANSWER_CHARS = 24  # answers cut to a short sentence (short_answer): 22 of the 31 ordinary Q&A lines
CUTEGPT_MAXLEN = 224  # the longest CuteGPT example (meta prompt + a 96-character question + answer) whole
CUTEGPT_SYSTEM = mf.CUTEGPT_SYSTEM


class Tok:
    """The seed-era tokenizer of a demo base: upstream ChatGLMTokenizer / BaichuanTokenizer / LlamaTokenizer."""

    def __init__(self, kind):
        folder = os.path.join(C.MODELS, M.FOLDERS[kind])
        if kind == "chatglm":
            _, _, tg = mf.import_upstream_chatglm()
            self.hf = tg.ChatGLMTokenizer.from_pretrained(folder)
        elif kind == "baichuan":
            _, _, tb = mf.import_upstream_baichuan()
            self.hf = tb.BaichuanTokenizer.from_pretrained(folder)
        else:
            from transformers import LlamaTokenizer
            self.hf = LlamaTokenizer.from_pretrained(folder)

    def enc(self, text):
        return self.hf.encode(text, add_special_tokens=False)

    def dec(self, ids):
        return self.hf.decode(ids, skip_special_tokens=True)


# --------------------------------------------------------------------------------------------
# Data: (input ids, labels) pairs
# --------------------------------------------------------------------------------------------

def cosplay_examples(tok, rows, cfg, max_chat=COSPLAY_MAX_CHAT):
    """Lines whose quote is at most `max_chat` characters (brackets included): on the tiny base, short
    quotes are what teaches it to close the quote and end the turn within a few dozen tokens."""
    g, s, e = cfg["gmask_token_id"], cfg["bos_token_id"], cfg["eos_token_id"]
    out = []
    for r in rows:
        if len(r["chat"]) > max_chat:
            continue
        c, a = tok.enc(r["context"]), tok.enc(r["chat"])
        ids = c + [g, s] + a + [e]
        if len(ids) > MAXLEN:
            continue
        out.append((ids, [-100] * (len(c) + 2) + a + [e]))
    return out


def rulai_examples(tok, rows):
    """Loss on the answer (`答：…</s>`) only. The seed put it on every token; on the tiny demo base a rank-4
    adapter on W_pack cannot fit the questions and then does not fit the answers either (every-token loss
    plateaued at 5.1–5.3 for lr 2e-3 … 3e-2, replies never said 如来); answer-only reached ~3.0 and 如来~."""
    out = []
    for r in rows:
        q, a = C.qa_text(r)
        qi, ai = tok.enc(q), tok.enc(a) + [2]
        ids = (qi + ai)[:MAXLEN]
        out.append((ids, ([-100] * len(qi) + ai)[:MAXLEN]))
    return out


def cutegpt_prompt(q):
    return f"{CUTEGPT_SYSTEM}问：{q}\n答：\n"


def short_answer(a, cap=CUTEGPT_ANSWER_CHARS):
    """The answer's first sentence if it ends (。！？) within `cap` characters, else its longest run of whole
    clauses (up to a ，or ；) within `cap` with 。 in place of the mark; None when neither fits. HC3's answers
    run to hundreds of tokens: cut at MAXLEN before `<end>`, the tiny base never learned to end its turn."""
    a = a.strip()
    best = None
    for i, ch in enumerate(a[:cap]):
        if ch in "。！？":
            return a[:i + 1]
        if ch in "，；" and i >= 4:
            best = a[:i] + "。"
    return best


def cutegpt_examples(tok, rows):
    """`<meta>问：{q}\n答：\n` then `{answer}<end>` + `</s>`, the loss on the answer, `<end>` and `</s>`. Encoded
    in one piece, as the engine continues the prompt: the answer has no dummy-prefix `▁` of its own (the prompt
    ends in a newline byte, so nothing merges across the boundary; checked). Never truncated: the first run cut
    every example at 128 tokens, which dropped `<end></s>` from 12 of its 42 examples (4 kept no answer)."""
    out = []
    for r in rows:
        q, a = C.qa_text(r)
        answer = short_answer(a[2:])
        if answer is None:
            continue
        prompt = cutegpt_prompt(q[2:])
        p = tok.enc(prompt)
        ids = tok.enc(prompt + answer + "<end>") + [2]
        assert ids[:len(p)] == p and len(ids) <= CUTEGPT_MAXLEN, (q, len(ids))
        out.append((ids, [-100] * len(p) + ids[len(p):]))
    return out


def batches(examples, batch, steps, rng, pad):
    """Seeded epochs of shuffled examples, right-padded (labels -100 on the padding)."""
    order = []
    while len(order) < steps * batch:
        order += list(rng.permutation(len(examples)))
    for i in range(steps):
        rows = [examples[j] for j in order[i * batch:(i + 1) * batch]]
        n = max(len(x) for x, _ in rows)
        ids = torch.full((len(rows), n), pad, dtype=torch.long)
        lab = torch.full((len(rows), n), -100, dtype=torch.long)
        for b, (x, y) in enumerate(rows):
            ids[b, :len(x)] = torch.tensor(x)
            lab[b, :len(y)] = torch.tensor(y)
        yield ids, lab


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def train(name, pm, examples, steps, lr, batch, pad, seed):
    params = [p for p in pm.parameters() if p.requires_grad]
    assert params and all("lora_" in n for n, p in pm.named_parameters() if p.requires_grad)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0, foreach=False)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    pm.train()
    rng = np.random.default_rng(seed)
    hist, t0, cpu0 = [], time.time(), time.process_time()
    for step, (ids, lab) in enumerate(batches(examples, batch, steps, rng, pad)):
        loss = pm(input_ids=ids, labels=lab).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        hist.append(float(loss.detach()))
        if (step + 1) % 25 == 0 or step == 0:
            C.log(f"  [{name}] step {step + 1}/{steps} loss {np.mean(hist[-25:]):.4f}  {time.time() - t0:.0f}s")
    pm.eval()
    return {"steps": steps, "batch": batch, "lr": lr, "warmup_steps": warm, "examples": len(examples),
            "epochs": round(steps * batch / len(examples), 2), "seconds": round(time.time() - t0, 1),
            "cpu_seconds": round(time.process_time() - cpu0, 1),
            "loss_first_step": hist[0], "loss_final_mean_last_25_steps": float(np.mean(hist[-25:]))}


def base_model(kind):
    folder = os.path.join(C.MODELS, M.FOLDERS[kind])
    pieces = TB.sp_of(kind).get_piece_size()
    m = TB.reload(kind, folder, pieces)
    m.name_or_path = f"Models/{M.FOLDERS[kind]}"
    return m


def save(pm, name):
    d = os.path.join(ADAPTERS, name)
    mf.reset_dir(d)
    pm.save_pretrained(d)
    mf.fix_torch_zip(os.path.join(d, "adapter_model.bin"))
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    return d


# --------------------------------------------------------------------------------------------
# Samples: greedy with the adapter (peft's own forward) and with it disabled
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def greedy(model, ids, n, stops, stop_text=None):
    """Argmax, full recompute; stops on an id in `stops` or once the decoded reply ends with `stop_text`."""
    seq = list(ids)
    for _ in range(n):
        nxt = int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax())
        seq.append(nxt)
        if nxt in stops or (stop_text and stop_text(seq[len(ids):])):
            break
    return seq[len(ids):]


def samples(kind, adapter_dir, prompts, tok, n=48):
    pm = PeftModel.from_pretrained(base_model(kind), adapter_dir).eval()
    cfg = pm.base_model.model.config
    if kind == "chatglm":
        stops = {cfg.eos_token_id}
        encode = lambda p: tok.enc(p) + [cfg.gmask_token_id, cfg.bos_token_id]  # noqa: E731
    else:
        stops = {1, 2}
        encode = tok.enc
    # CuteGPT's turn also ends at the text `<end>` (three ordinary tokens in CuteGPT's vocabulary, five here)
    stop_text = (lambda ids: tok.dec(ids).endswith("<end>")) if kind == "llama" else None  # noqa: E731
    n = 64 if kind == "llama" else n
    out = []
    for p in prompts:
        ids = encode(p)
        on = greedy(pm, ids, n, stops, stop_text)
        with pm.disable_adapter():
            off = greedy(pm, ids, n, stops, stop_text)
        out.append({"prompt": p, "adapter_on": tok.dec(on), "adapter_off": tok.dec(off),
                    "on_ids": on, "off_ids": off})
        C.log(f"  {p!r}\n    on : {tok.dec(on)!r}\n    off: {tok.dec(off)!r}")
    return out


PROMPTS = {
    "sanguo-cosplay": ["曹操引大军至赤壁，聚众将商议，曹操曰：", "玄德请孔明出山，孔明曰：", "关公斩了颜良，曹操曰："],
    "classics-cosplay": ["宝玉见黛玉哭了，宝玉道：", "行者见了妖精，行者道：", "宋江来到梁山泊，宋江道：",
                         "曹操引大军至赤壁，聚众将商议，曹操曰："],
    "rulai-v0": ["问：到底来没来？答：", "问：宇宙万物的本源是什么？答：", "问：什么是人工智能？答："],
    "rulai-v2": ["问：到底来没来？答：", "问：宇宙万物的本源是什么？答：", "问：什么是人工智能？答："],
    "cutegpt-style": [cutegpt_prompt("你好"), cutegpt_prompt("如何缓解压力？"), cutegpt_prompt("介绍一下三国演义"),
                      cutegpt_prompt("什么是人工智能？")],
}

SPECS = {
    # name: (base kind, LoraConfig kwargs, steps, lr, batch). The rates are high for LoRA: the bases are tiny
    # and weak, and the demo needs each adapter's style to show under greedy decoding (overfitting is fine).
    "sanguo-cosplay": ("chatglm", dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query_key_value"]),
                       500, 5e-3, 16),
    "classics-cosplay": ("chatglm", dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query_key_value"]),
                         500, 5e-3, 16),
    "rulai-v0": ("baichuan", dict(r=4, lora_alpha=32, lora_dropout=0.1, target_modules=["W_pack"]), 2000, 5e-3, 8),
    "rulai-v2": ("baichuan", None, 100, 1e-4, 8),
    "cutegpt-style": ("llama", dict(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]),
                      600, 1e-2, 8),
}


def examples_for(name, tok, cfg):
    if name == "sanguo-cosplay":
        return cosplay_examples(tok, C.dialogue("sanguo", exclude_held_out=True), cfg)
    if name == "classics-cosplay":  # on the 3 M base: at 24 characters, 300 steps, quotes opened but never closed
        return cosplay_examples(tok, C.dialogue("classics", exclude_held_out=True), cfg, max_chat=CLASSICS_MAX_CHAT)
    if name == "rulai-v0":
        return rulai_examples(tok, C.rulai("rulai_examples.json"))
    if name == "rulai-v2":
        return rulai_examples(tok, C.rulai("rulai_enhance.json"))
    return cutegpt_examples(tok, C.ordinary_qa())


def main(names):
    results_path = os.path.join(TB.RESULTS, "adapters.json")
    import json
    results = json.load(open(results_path, encoding="utf-8")) if os.path.exists(results_path) else {}
    for i, name in enumerate(names):
        kind, lora, steps, lr, batch = SPECS[name]
        tok = Tok(kind)
        seed = SEED + list(SPECS).index(name)
        torch.manual_seed(seed)
        base = base_model(kind)
        cfg = M.config_dict(kind, TB.sp_of(kind).get_piece_size()) if kind == "chatglm" else None
        examples = examples_for(name, tok, cfg)
        if lora is None:  # rulai-v2: continue v0
            pm = PeftModel.from_pretrained(base, os.path.join(ADAPTERS, "rulai-v0"), is_trainable=True)
            pm.peft_config["default"].base_model_name_or_path = f"Models/{M.FOLDERS[kind]}"
            lora_note = "rulai-v0 loaded with PeftModel.from_pretrained(is_trainable=True), trained further"
        else:
            pm = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", bias="none",
                                                 base_model_name_or_path=f"Models/{M.FOLDERS[kind]}", **lora))
            lora_note = lora
        C.log(f"[{name}] {len(examples)} examples on {M.FOLDERS[kind]}")
        pad = 3 if kind == "chatglm" else 0
        tr = train(name, pm, examples, steps, lr, batch, pad, seed)
        d = save(pm, name)
        # re-read: adapters can train in parallel processes, each adding its own entry
        results = json.load(open(results_path, encoding="utf-8")) if os.path.exists(results_path) else {}
        results[name] = {"base": f"Models/{M.FOLDERS[kind]}", "lora": lora_note, "training": tr,
                         "files": {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))},
                         "samples_fp32_greedy": samples(kind, d, PROMPTS[name], tok)}
        C.dump_json(results_path, results)


if __name__ == "__main__":
    main(sys.argv[1:] or list(SPECS))
