#!/usr/bin/env python3
"""Trains the demo models' SentencePiece vocabularies and writes their tokenizer files.

One training text — every paragraph of the four novels plus every q/a line of the two RulaiGPT files
(no character filtering) — and three models of VOCAB pieces with make_fixtures.train_sp's settings
(one thread, fixed seed, byte_fallback, identity normalisation, printable ASCII required, coverage 0.9995):

- Models/glm-demo/ice_text.model: Unigram, add_dummy_prefix, `<pad>` = 3, the ChatGLM user pieces `<n>`,
  `<|tab|>`, `<|blank_2|>`…`<|blank_80|>` (4…84), then `[MASK] [gMASK] [sMASK] <unused_0> <sop> <eop> <ENC>
  <dBLOCK>` appended at the end as CONTROL pieces, as in the real ice_text.model (make_fixtures.build_sp_models);
  tokenizer_config.json as THUDM/chatglm-6b's with num_image_tokens 0 (a "slim" checkpoint).
- Models/baichuan-demo/tokenizer.model: BPE, split digits, no dummy prefix; Baichuan-7B's tokenizer_config.json
  (BaiChuanTokenizer, add_bos_token/add_eos_token false) and special_tokens_map.json.
- Models/llama-demo/tokenizer.model: BPE, split digits, dummy prefix; files written by transformers 4.30.2
  `LlamaTokenizer.save_pretrained`.

It also writes each folder's config.json (the sizes in models.py), so `yanyi tokenize/inspect` work before the
weights exist. Run: tools/fixtures/.venv/bin/python tools/demo/make_tokenizers.py  (about 3 minutes on one core)
"""
import os
import shutil
import tempfile
import time

import common as C
import models as M
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

mf = C.mf
VOCAB = 6000


def training_lines():
    lines = []
    for name in C.NOVEL_FILES:
        lines += C.novel_paragraphs(name)
    for f in ("rulai_examples.json", "rulai_enhance.json"):
        for row in C.rulai(f):
            lines += [l for l in (row["q"] + "\n" + row["a"]).split("\n") if l.strip()]
    return lines


def train_all():
    lines = training_lines()
    kw = dict(vocab_size=VOCAB, max_sentence_length=1 << 16)
    t0 = time.time()
    glm = mf.train_sp(lines, model_type="unigram", add_dummy_prefix=True, pad_id=3, pad_piece="<pad>",
                      user_defined_symbols=C.GLM_USER, **kw)
    proto = sp_pb2.ModelProto()
    proto.ParseFromString(glm)
    for s in C.GLM_SPECIALS:
        p = proto.pieces.add()
        p.piece, p.score, p.type = s, 0.0, sp_pb2.ModelProto.SentencePiece.CONTROL
    glm = proto.SerializeToString()
    C.log(f"  unigram (chatglm) {time.time() - t0:.0f}s")
    t0 = time.time()
    baichuan = mf.train_sp(lines, model_type="bpe", split_digits=True, add_dummy_prefix=False,
                           allow_whitespace_only_pieces=True, **kw)
    C.log(f"  bpe (baichuan) {time.time() - t0:.0f}s")
    t0 = time.time()
    llama = mf.train_sp(lines, model_type="bpe", split_digits=True, add_dummy_prefix=True,
                        allow_whitespace_only_pieces=True, **kw)
    C.log(f"  bpe (llama) {time.time() - t0:.0f}s")
    sp = spm.SentencePieceProcessor(model_proto=glm)
    n = sp.get_piece_size()
    assert [sp.id_to_piece(i) for i in range(n - 8, n)] == C.GLM_SPECIALS
    assert sp.piece_to_id("<pad>") == 3 and sp.piece_to_id("<n>") == 4
    for s in C.GLM_SPECIALS:
        assert sp.decode([sp.piece_to_id(s)]) == "", s
    return {"chatglm": glm, "baichuan": baichuan, "llama": llama}


def write_glm(folder, sp_bytes):
    with open(os.path.join(folder, "ice_text.model"), "wb") as f:
        f.write(sp_bytes)
    C.dump_json(os.path.join(folder, "tokenizer_config.json"), {
        "name_or_path": "THUDM/chatglm-6b", "bos_token": "<sop>", "eos_token": "<eop>", "end_token": "</s>",
        "gmask_token": "[gMASK]", "mask_token": "[MASK]", "pad_token": "<pad>", "unk_token": "<unk>",
        "remove_space": False, "do_lower_case": False, "tokenizer_class": "ChatGLMTokenizer",
        "num_image_tokens": 0,
        "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]},
    })


def write_baichuan(folder, sp_bytes):
    with open(os.path.join(folder, "tokenizer.model"), "wb") as f:
        f.write(sp_bytes)
    tok = mf.BAICHUAN_TOKEN
    C.dump_json(os.path.join(folder, "tokenizer_config.json"), {
        "add_bos_token": False, "add_eos_token": False,
        "auto_map": {"AutoTokenizer": ["tokenization_baichuan.BaiChuanTokenizer", None]},
        "bos_token": tok("<s>"), "clean_up_tokenization_spaces": False, "eos_token": tok("</s>"),
        "model_max_length": 1000000000000000019884624838656, "sp_model_kwargs": {},
        "tokenizer_class": "BaiChuanTokenizer", "unk_token": tok("<unk>"),
    })
    C.dump_json(os.path.join(folder, "special_tokens_map.json"),
                {k: {kk: vv for kk, vv in tok(c).items() if kk != "__type"}
                 for k, c in (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"))})


def write_llama(folder, sp_bytes):
    from transformers import LlamaTokenizer
    tmp = tempfile.mkdtemp()
    vf = os.path.join(tmp, "tokenizer.model")
    with open(vf, "wb") as f:
        f.write(sp_bytes)
    out = os.path.join(tmp, "out")
    LlamaTokenizer(vocab_file=vf).save_pretrained(out)
    mf.clean_tokenizer_config(os.path.join(out, "tokenizer_config.json"))
    for f in sorted(os.listdir(out)):
        shutil.copy(os.path.join(out, f), os.path.join(folder, f))
    shutil.rmtree(tmp)


def check(models):
    """The seed-era tokenizer classes load the folders and round-trip a few lines."""
    _, _, tg = mf.import_upstream_chatglm()
    _, _, tb = mf.import_upstream_baichuan()
    from transformers import LlamaTokenizer
    text = "孔明曰：“吾料曹操必走华容道。”\n问：到底来没来?答：如来~ Hello 世界"
    glm = tg.ChatGLMTokenizer.from_pretrained(os.path.join(C.MODELS, "glm-demo"))
    ids = glm.encode(text)
    assert ids[-2:] == [glm.gmask_token_id, glm.bos_token_id] and glm.decode(ids) == text, glm.decode(ids)
    bc = tb.BaichuanTokenizer.from_pretrained(os.path.join(C.MODELS, "baichuan-demo"))
    assert bc.decode(bc.encode(text, add_special_tokens=False)) == text
    ll = LlamaTokenizer.from_pretrained(os.path.join(C.MODELS, "llama-demo"))
    assert ll.decode(ll.encode(text, add_special_tokens=False)) == text
    C.log(f"  {text!r}: chatglm {len(ids)} ids, baichuan {len(bc.encode(text))}, llama {len(ll.encode(text))}")


def main():
    models = train_all()
    for name, kind, writer in (("glm-demo", "chatglm", write_glm), ("baichuan-demo", "baichuan", write_baichuan),
                               ("llama-demo", "llama", write_llama)):
        folder = os.path.join(C.MODELS, name)
        os.makedirs(folder, exist_ok=True)
        writer(folder, models[kind])
        M.write_config(kind, folder, spm.SentencePieceProcessor(model_proto=models[kind]).get_piece_size())
        C.log(f"  {folder}: {mf.sp_facts(models[kind])}")
    check(models)


if __name__ == "__main__":
    main()
