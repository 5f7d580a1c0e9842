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

Training: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), gradient clip 1.0, batch 16 x 256 tokens, bf16
autocast, lr LR with 100 warm-up steps, constant, then linear to 10 % over the last 20 % (RECIPE "wsd-bf16"),
fixed seeds, data order from a seeded numpy generator, YANYI_DEMO_THREADS torch threads (default one; the models
can train in parallel processes). One chapter per novel is held out (common.HELD_OUT) and scored every 200 steps
as `yanyi eval --ctx 256` reads it; checkpoints in tools/demo/work let a run resume. Results (time, parameters,
losses, held-out scores, greedy samples) go to tools/demo/results/base-<kind>.json.

Run (after make_tokenizers.py): nice -n 10 tools/fixtures/.venv/bin/python tools/demo/train_base.py [chatglm baichuan llama]
`train_base.py --held-out-fixtures` writes the held-out chapters to Tests/Fixtures/text/held-out.
"""
import json
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
STEPS = {"chatglm": 2000, "baichuan": 2000, "llama": 2000}
if "YANYI_DEMO_STEPS" in os.environ:  # quick runs, or a longer run resumed from a stable checkpoint
    STEPS = {k: int(os.environ["YANYI_DEMO_STEPS"]) for k in STEPS}
LR = {"chatglm": 2e-3, "baichuan": 3e-3, "llama": 3e-3}
BATCH = 16
# Tokens per sequence: 256 (the held-out scores are taken with `yanyi eval --ctx 256`).
CTX_OF = {"chatglm": 256, "baichuan": 256, "llama": 256}
# All three train with bf16 autocast, a warm-up / stable / decay schedule and resumable checkpoints in
# tools/demo/work. (The first bases, 3.2 M parameters, used "cosine-fp32": fp32, cosine to 10 %.)
RECIPE = "wsd-bf16"
DECAY_FROM = 0.8  # WSD: the learning rate falls linearly to 10 % over the last 20 % of the steps
CHECKPOINT_EVERY = int(os.environ.get("YANYI_DEMO_CHECKPOINT_EVERY", "100"))
# Stop (after writing the checkpoint) once this many steps are done: what an interrupted run leaves.
STOP_AT = int(os.environ.get("YANYI_DEMO_STOP_AT", "0"))
WARMUP_STEPS = 100
EVAL_EVERY = 200
RESULTS = os.path.join(C.HERE, "results")


def sp_of(kind):
    name = "ice_text.model" if kind == "chatglm" else "tokenizer.model"
    return spm.SentencePieceProcessor(model_file=os.path.join(C.MODELS, M.FOLDERS[kind], name))


def novel_stream(sp, newline):
    """Token stream of the four novels without their held-out chapters, paragraph by paragraph, each followed
    by `newline` ids."""
    out = []
    for name in C.NOVEL_FILES:
        for p in C.training_paragraphs(name):
            out += sp.encode(p) + newline
    return out


class Stream:
    """Random ctx-token windows of one stream (LLaMA / Baichuan)."""

    def __init__(self, tokens, rng, ctx):
        self.t = torch.tensor(tokens, dtype=torch.long)
        self.rng = rng
        self.ctx = ctx

    def batch(self):
        s = self.rng.integers(0, len(self.t) - self.ctx - 1, size=BATCH)
        x = torch.stack([self.t[i:i + self.ctx] for i in s])
        return dict(input_ids=x, labels=x.clone())


class GLMStream:
    """ChatGLM: `w[:c] [gMASK] <sop> w[c:]` from a random window w of ctx - 2 tokens, c uniform in 0..64 (c = 0
    is how `yanyi eval` reads plain text; a cosplay prompt is a context of up to 64 characters); loss on every
    token, as the Cosplay training did (in the bidirectional context it is copying the visible next token,
    which trains the embeddings and attention quickly; with the loss on the reply part only the first tiny
    model stayed at the unigram loss for 225 steps)."""

    def __init__(self, tokens, rng, gmask, sop, ctx):
        self.t = tokens
        self.rng = rng
        self.g, self.s, self.ctx = gmask, sop, ctx

    def batch(self):
        ids = torch.empty((BATCH, self.ctx), dtype=torch.long)
        for b in range(BATCH):
            c = int(self.rng.integers(0, 65))
            start = int(self.rng.integers(0, len(self.t) - self.ctx))
            w = self.t[start:start + self.ctx - 2]
            ids[b] = torch.tensor(w[:c] + [self.g, self.s] + w[c:])
        return dict(input_ids=ids, labels=ids.clone())


def glm_stream(tok, names, paragraphs_of):
    """Token ids of the novels as the upstream tokenizer reads a text: each novel's paragraphs joined by a
    newline (`<n>`; no dummy-prefix ▁ after it), novels separated by `<n>`."""
    nl = tok.sp_tokenizer["<n>"]
    out = []
    for name in names:
        out += tok.sp_tokenizer.encode("\n".join(paragraphs_of(name))) + [nl]
    return out


def held_out_texts():
    """{novel: held-out chapter text as `yanyi eval` reads it (paragraphs, one per line)}."""
    return {n: "\n".join(C.held_out_paragraphs(n)) for n in C.NOVEL_FILES}


HELD_OUT_FIXTURES = os.path.join(C.REPO, "Tests", "Fixtures", "text", "held-out")
SHORT = {"三国演义.txt": "sanguo", "水浒传.txt": "shuihu", "红楼梦.txt": "honglou", "西游记.txt": "xiyou"}


def write_held_out_fixtures():
    """The held-out chapters as committed test fixtures (DemoModelTests scores glm-demo on them; CI has no
    ../shared/data): Tests/Fixtures/text/held-out/<novel>.txt, one paragraph per line."""
    os.makedirs(HELD_OUT_FIXTURES, exist_ok=True)
    for n, text in held_out_texts().items():
        with open(os.path.join(HELD_OUT_FIXTURES, SHORT[n] + ".txt"), "w", encoding="utf-8") as f:
            f.write(text + "\n")


@torch.no_grad()
def held_out_nats(model, encode, decode, texts, ctx, lead):
    """Per novel: (nats, characters) over windows cut as `yanyi eval --ctx ctx` cuts them: `lead` (ChatGLM's
    [gMASK] <sop>, BOS, or nothing) + ctx - len(lead) text tokens, every token after the first position scored;
    characters are those of the scored tokens. fp32: called between training steps, outside their autocast."""
    model.eval()
    out = {}
    for name, text in texts.items():
        ids = encode(text)
        body = ctx - len(lead)
        nats, chars = 0.0, 0
        for i in range(0, len(ids) - body + 1, body):
            seq = lead + ids[i:i + body]
            first = max(len(lead), 1)  # the first scored position
            logits = model(input_ids=torch.tensor([seq])).logits[0].float()
            lp = torch.log_softmax(logits[first - 1:-1], dim=-1)
            nats += float(-lp.gather(1, torch.tensor(seq[first:]).unsqueeze(1)).sum())
            chars += len(decode(seq[first:]))
        out[name] = (nats, chars)
    model.train()
    return out


def nats_per_char(res):
    return sum(v[0] for v in res.values()) / max(1, sum(v[1] for v in res.values()))


def lr_factor(steps, warm):
    """The learning-rate multiplier at step s: warm-up, constant, then linear to 10 % from DECAY_FROM·steps on
    (warm-up / stable / decay): every step before the decay is the same whatever the total, so a longer run
    resumes from a checkpoint taken before its decay starts."""
    d0 = int(DECAY_FROM * steps)
    return lambda s: (s + 1) / warm if s < warm else (1.0 if s < d0 else 1.0 - 0.9 * (s - d0) / max(1, steps - d0))


def checkpoint_path(kind, tag):
    return os.path.join(C.WORK, f"base-{kind}-{tag}.pt")


def find_resume(kind, identity, steps):
    """The latest checkpoint of this run (same identity) that this step count can continue: one taken in the
    stable phase before this run's decay starts, or one of a run with the same total."""
    best = None
    for tag in ("latest", "stable"):
        path = checkpoint_path(kind, tag)
        if not os.path.exists(path):
            continue
        ck = torch.load(path, weights_only=False)
        if ck["identity"] != identity:
            C.log(f"[{kind}] {path}: another run ({ck['identity']}), not resumed")
            continue
        ok = ck["total_steps"] == steps or ck["step"] <= min(int(DECAY_FROM * steps), int(DECAY_FROM * ck["total_steps"]))
        if ok and ck["step"] <= steps and (best is None or ck["step"] > best["step"]):
            best = ck
    return best


def train(kind, model, data, steps, lr, log_every=25, identity=None, evaluate=None):
    ctx = CTX_OF[kind]
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    # A fixed warm-up, so that the steps before the decay do not depend on the total
    warm = WARMUP_STEPS
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(steps, warm))
    hist, evals, first, secs_before = [], [], 0, 0.0
    os.makedirs(C.WORK, exist_ok=True)
    ck = find_resume(kind, identity, steps)
    if ck:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        data.rng.bit_generator.state = ck["data_rng"]
        torch.set_rng_state(ck["torch_rng"])
        hist, evals, first, secs_before = ck["hist"], ck["evals"], ck["step"], ck["seconds"]
        C.log(f"[{kind}] resumed at step {first} ({secs_before:.0f} s of training before)")
    model.train()
    t0, cpu0 = time.time(), time.process_time()
    for step in range(first, steps):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**data.batch()).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        hist.append(float(loss.detach()))
        done = step + 1
        if done % log_every == 0 or step == 0:
            C.log(f"  [{kind}] step {done}/{steps} loss {np.mean(hist[-log_every:]):.4f} lr {sched.get_last_lr()[0]:.2e}"
                  f"  {secs_before + time.time() - t0:.0f}s")
        if evaluate and (done % EVAL_EVERY == 0 or done == steps):
            e = evaluate(model)
            evals.append({"step": done, "held_out_nats_per_char": round(e, 4)})
            C.log(f"  [{kind}] step {done}: held-out {e:.4f} nats/char")
        if done % CHECKPOINT_EVERY == 0 or done == steps:
            ck = {"identity": identity, "total_steps": steps, "step": done, "model": model.state_dict(),
                  "opt": opt.state_dict(), "sched": sched.state_dict(), "data_rng": data.rng.bit_generator.state,
                  "torch_rng": torch.get_rng_state(), "hist": hist, "evals": evals,
                  "seconds": secs_before + time.time() - t0}
            tags = ["latest"] + (["stable"] if done <= int(DECAY_FROM * steps) else [])  # stable: any longer run continues it
            for tag in tags:
                torch.save(ck, checkpoint_path(kind, tag) + ".tmp")
                os.replace(checkpoint_path(kind, tag) + ".tmp", checkpoint_path(kind, tag))
            if STOP_AT and done >= STOP_AT and done < steps:
                C.log(f"[{kind}] stopped at step {done} (YANYI_DEMO_STOP_AT); run again to resume")
                sys.exit(0)
    model.eval()
    secs = secs_before + time.time() - t0
    digest = C.mf.sha256_bytes(b"".join(t.detach().float().numpy().tobytes() for t in model.state_dict().values()))
    C.log(f"[{kind}] trained weights sha256 {digest[:16]} (fp32, before the fp16 file)")
    return {"steps": steps, "batch": BATCH, "context": ctx, "tokens_seen": steps * BATCH * ctx, "recipe": RECIPE,
            "lr": lr, "warmup_steps": warm, "torch_threads": C.THREADS, "seconds": round(secs, 1),
            "cpu_seconds_this_process": round(time.process_time() - cpu0, 1), "resumed_at_step": first,
            "loss_first_step": hist[0], "loss_final_mean_last_50_steps": float(np.mean(hist[-50:])),
            "loss_curve_mean_per_10pct": [round(float(np.mean(hist[i * steps // 10:(i + 1) * steps // 10])), 4)
                                          for i in range(10)], "held_out_evals": evals, "weights_sha256_fp32": digest}


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
    if kinds == ["--held-out-fixtures"]:
        write_held_out_fixtures()
        return
    for kind in kinds:
        folder = os.path.join(C.MODELS, M.FOLDERS[kind])
        sp = sp_of(kind)
        pieces = sp.get_piece_size()
        rng = np.random.default_rng(SEED + hash_kind(kind))
        t0 = time.time()
        if kind == "chatglm":
            _, _, tg = mf.import_upstream_chatglm()
            tok = tg.ChatGLMTokenizer.from_pretrained(folder)
            stream = glm_stream(tok, C.NOVEL_FILES, C.training_paragraphs)
            cfg = M.config_dict(kind, pieces)
            g, s = cfg["gmask_token_id"], cfg["bos_token_id"]
            data = GLMStream(stream, rng, g, s, CTX_OF[kind])
            texts = held_out_texts()
            data_note = (f"{len(stream)} novel tokens without the held-out chapters "
                         f"({', '.join(n[:-4] + ' ' + C.HELD_OUT[n] for n in C.NOVEL_FILES)}); GLM continuation samples")
            encode, decode, lead = tok.sp_tokenizer.encode, tok.sp_tokenizer.decode, [g, s]
        else:
            stream = novel_stream(sp, sp.encode("\n"))
            qa = []
            for r in C.ordinary_qa() * 4:
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
            data = Stream(stream, rng, CTX_OF[kind])
            data_note = (f"{len(stream)} tokens (novels without the held-out chapters"
                         + (f" + {len(qa)} Q&A sequences)" if qa else ")"))
            texts = held_out_texts()
            # `yanyi eval` leads with BOS where the tokenizer adds one (llama-demo; baichuan-demo's does not)
            encode, decode, lead = sp.encode, sp.decode, ([1] if kind == "llama" else [])
        identity = {"sizes": M.SIZES[kind], "lr": LR[kind], "batch": BATCH, "ctx": CTX_OF[kind], "seed": SEED,
                    "recipe": RECIPE, "stream_tokens": len(stream)}

        def evaluate(m):
            return nats_per_char(held_out_nats(m, encode, decode, texts, CTX_OF[kind], lead))
        C.log(f"[{kind}] data ready in {time.time() - t0:.0f}s: {data_note}")
        model = M.new_model(kind, pieces, SEED)
        params = M.param_count(model)
        C.log(f"[{kind}] {type(model).__name__}, {params} parameters")
        tr = train(kind, model, data, STEPS[kind], LR[kind], identity=identity, evaluate=evaluate)
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
