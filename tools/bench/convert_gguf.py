#!/usr/bin/env python3
"""Writes llama.cpp's GGUF files for the same weights Yanyi loads, with the `gguf` PyPI package.

  convert_gguf.py model   --checkpoint DIR --out model-q8_0.gguf     # Baichuan-7B-shaped fp16 checkpoint -> Q8_0
  convert_gguf.py adapter --checkpoint DIR --adapter DIR --out lora.gguf   # PEFT LoRA -> GGUF LoRA (F32)

What llama.cpp's own converters (vendor/llama.cpp/conversion/baichuan.py, convert_lora_to_gguf.py of
llama-cpp-python 0.3.36) do for a Baichuan-7B checkpoint, written out here so the run needs neither
transformers nor a network:
- arch "baichuan"; W_pack [3H, H] = contiguous Q|K|V is split, and the Q and K rows go through the
  reverse of HF's rotary permutation (_reverse_hf_permute), since llama.cpp rotates adjacent pairs;
  llama.cpp's baichuan graph applies rotary only when it recognises a 7B (32 layers): a model with
  another layer count (a quick-test model) is written as arch "llama", the same computation
  (--arch auto, the default);
- every 2-D weight (embedding and lm_head included) Q8_0 via gguf.quants, 1-D norms F32;
  rotary_emb.inv_freq buffers dropped;
- vocab from tokenizer.model padded to config.vocab_size with [PAD{i}] (_create_vocab_sentencepiece);
- the LoRA: lora_A as is, lora_B split and permuted like the rows of W_pack (the A of W_pack is shared
  by q, k and v); general.type "adapter", adapter.type "lora", adapter.lora.alpha.
Memory: shards are memory-mapped and written tensor by tensor (peak ~ one fp32 copy of the largest
tensor, ~1 GiB for the 64000x4096 embedding).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import gguf
try:  # only PyTorch .bin checkpoints need torch; safetensors are read with numpy
    import torch
except ImportError:
    torch = None
from gguf import GGMLQuantizationType as QT



def pick_arch(choice, layers):
    """llama.cpp's baichuan graph: rotary for 32 layers (7B), ALiBi for 40 (13B), neither otherwise."""
    if choice == "auto":
        choice = "baichuan" if layers == 32 else "llama"
    arch = gguf.MODEL_ARCH.BAICHUAN if choice == "baichuan" else gguf.MODEL_ARCH.LLAMA
    return arch, gguf.MODEL_ARCH_NAMES[arch]


def reverse_hf_permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_config(ckpt):
    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "baichuan":
        sys.exit(f"convert_gguf: {ckpt}/config.json: model_type {cfg.get('model_type')!r}, only baichuan is converted")
    return cfg


def shards(ckpt):
    """(file, [names]) in file order, from the index or the single file; .bin or .safetensors."""
    for index in ("pytorch_model.bin.index.json", "model.safetensors.index.json"):
        p = os.path.join(ckpt, index)
        if os.path.exists(p):
            with open(p) as f:
                wm = json.load(f)["weight_map"]
            files = sorted(set(wm.values()))
            return [os.path.join(ckpt, fn) for fn in files]
    for single in ("pytorch_model.bin", "model.safetensors"):
        if os.path.exists(os.path.join(ckpt, single)):
            return [os.path.join(ckpt, single)]
    sys.exit(f"convert_gguf: {ckpt}: no pytorch_model*.bin or model*.safetensors")


class SafetensorsShard:
    """name -> numpy array, read lazily (one tensor at a time) with safetensors' numpy loader."""
    def __init__(self, path):
        from safetensors import safe_open
        self.f = safe_open(path, framework="np")

    def items(self):
        for name in self.f.keys():
            yield name, self.f.get_tensor(name)

    def shape_items(self):
        """Stand-ins with the right shapes and no data (zero strides), for the header pass."""
        for name in self.f.keys():
            shape = tuple(self.f.get_slice(name).get_shape())
            yield name, np.lib.stride_tricks.as_strided(np.zeros(1, np.float16), shape, (0,) * len(shape))


def open_shard(path):
    if path.endswith(".safetensors"):
        return SafetensorsShard(path)
    if torch is None:
        sys.exit(f"convert_gguf: {path}: a PyTorch .bin shard needs torch (pip install torch)")
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def f32(t):
    """A torch tensor or numpy array as a contiguous float32 numpy array."""
    if torch is not None and isinstance(t, torch.Tensor):
        t = t.float().numpy()
    return np.ascontiguousarray(t, dtype=np.float32)


def gguf_tensors(name, t, n_head, tmap):
    """HF name + tensor -> [(gguf name, torch tensor)], as conversion/baichuan.py does."""
    if name.endswith("rotary_emb.inv_freq"):
        return []
    if name.endswith("self_attn.W_pack.weight"):
        bid = int(name.split(".")[2])
        r = t.shape[0] // 3
        return [(f"blk.{bid}.attn_q.weight", reverse_hf_permute(t[:r], n_head)),
                (f"blk.{bid}.attn_k.weight", reverse_hf_permute(t[r:2 * r], n_head)),
                (f"blk.{bid}.attn_v.weight", t[2 * r:])]
    base, suffix = name.rsplit(".", 1)
    mapped = tmap.get_name(base)
    if mapped is None:
        sys.exit(f"convert_gguf: no GGUF name for tensor {name}")
    return [(f"{mapped}.{suffix}", t)]


def add_vocab(w, ckpt, vocab_size):
    from sentencepiece import SentencePieceProcessor
    sp = SentencePieceProcessor(model_file=os.path.join(ckpt, "tokenizer.model"))
    T = gguf.TokenType
    tokens = [f"[PAD{i}]".encode() for i in range(vocab_size)]
    scores = [-10000.0] * vocab_size
    types = [T.UNUSED] * vocab_size
    for i in range(min(sp.vocab_size(), vocab_size)):
        tokens[i] = sp.id_to_piece(i).encode()
        scores[i] = sp.get_score(i)
        types[i] = (T.UNKNOWN if sp.is_unknown(i) else T.CONTROL if sp.is_control(i)
                    else T.UNUSED if sp.is_unused(i) else T.BYTE if sp.is_byte(i) else T.NORMAL)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())


def convert_model(args):
    ckpt = args.checkpoint
    cfg = load_config(ckpt)
    H, n_head, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    arch, arch_name = pick_arch(args.arch, L)
    tmap = gguf.get_tensor_name_map(arch, L)
    files = shards(ckpt)
    tmp = args.out + ".part"
    w = gguf.GGUFWriter(tmp, arch_name)
    w.add_name(os.path.basename(os.path.normpath(ckpt)))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if arch == gguf.MODEL_ARCH.BAICHUAN:
        w.add_tensor_data_layout("Meta AI original pth")
    w.add_rope_dimension_count(H // n_head)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_vocab(w, ckpt, cfg["vocab_size"])

    # Pass 1: names, shapes and types (the header comes before the data).
    plan = []
    for fn in files:
        sd = open_shard(fn)
        for name, t in (sd.shape_items() if isinstance(sd, SafetensorsShard) else sd.items()):
            for gname, g in gguf_tensors(name, t, n_head, tmap):
                qt = QT.Q8_0 if len(g.shape) == 2 else QT.F32
                shape = tuple(g.shape)
                nbytes = (int(np.prod(shape)) // 32 * 34) if qt == QT.Q8_0 else int(np.prod(shape)) * 4
                byte_shape = gguf.quant_shape_to_byte_shape(shape, qt) if qt == QT.Q8_0 else shape
                w.add_tensor_info(gname, byte_shape, np.dtype(np.uint8 if qt == QT.Q8_0 else np.float32),
                                  nbytes, raw_dtype=qt)
                plan.append((gname, qt))
        del sd
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    # Pass 2: data, tensor by tensor, in the same order.
    t0, done, k = time.time(), 0, 0
    for fn in files:
        sd = open_shard(fn)
        for name, t in sd.items():
            for gname, g in gguf_tensors(name, t, n_head, tmap):
                assert plan[k][0] == gname, (plan[k], gname)
                a = f32(g)
                data = gguf.quants.quantize(a, QT.Q8_0) if plan[k][1] == QT.Q8_0 else np.ascontiguousarray(a)
                w.write_tensor_data(data)
                done += data.nbytes
                k += 1
                del a, data
        del sd
        print(f"  {os.path.basename(fn)}: {done / 2**30:.2f} GiB written, {time.time() - t0:.0f}s", flush=True)
    w.close()
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: arch {arch_name}, {k} tensors, {os.path.getsize(args.out) / 2**30:.2f} GiB, {time.time() - t0:.0f}s")


def convert_adapter(args):
    cfg = load_config(args.checkpoint)
    n_head, L = cfg["num_attention_heads"], cfg["num_hidden_layers"]
    arch, arch_name = pick_arch(args.arch, L)
    tmap = gguf.get_tensor_name_map(arch, L)
    with open(os.path.join(args.adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    st = os.path.join(args.adapter, "adapter_model.safetensors")
    if os.path.exists(st):
        from safetensors.numpy import load_file
        sd = load_file(st)
    elif torch is None:
        sys.exit(f"convert_gguf: {args.adapter}: adapter_model.bin needs torch (pip install torch)")
    else:
        sd = torch.load(os.path.join(args.adapter, "adapter_model.bin"), map_location="cpu", weights_only=True)
    modules = sorted({k.split(".lora_")[0] for k in sd})
    w = gguf.GGUFWriter(args.out, arch_name)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(acfg["lora_alpha"]))
    n = 0
    for m in modules:
        A, B = f32(sd[m + ".lora_A.weight"]), f32(sd[m + ".lora_B.weight"])
        hf = m[len("base_model.model."):] + ".weight"
        # B carries the output rows, so it is split/permuted exactly like the base weight; A is shared.
        for gname, b in gguf_tensors(hf, B, n_head, tmap):
            w.add_tensor(gname + ".lora_a", A)
            w.add_tensor(gname + ".lora_b", f32(b))
            n += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out}: arch {arch_name}, {n} LoRA pairs (rank {acfg['r']}, alpha {acfg['lora_alpha']}) from {len(modules)} PEFT modules")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("model")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("adapter")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--out", required=True)
    for p in sub.choices.values():
        p.add_argument("--arch", choices=["auto", "baichuan", "llama"], default="auto",
                       help="GGUF architecture (auto: baichuan for 32 layers, else llama)")
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    {"model": convert_model, "adapter": convert_adapter}[args.cmd](args)


if __name__ == "__main__":
    main()
