"""The three demo architectures: sizes, config.json files as the real checkpoints have them, and the real
model classes (upstream ChatGLM-6B and Baichuan-7B remote code, transformers 4.30.2 LlamaForCausalLM)."""
import math
import os
import sys
import types

import common as C
import torch
import torch.nn.functional as F

mf = C.mf

# Hidden sizes are multiples of 32 (the engine's int8 blocks run along the input dimension).
SIZES = {
    # glm-demo, the default base: 12.9 M parameters (26 MB fp16), sized for ~1.5 h of bf16 training on 2 cores
    "chatglm": dict(hidden=384, heads=6, layers=6, inner=1536),
    # baichuan-demo and llama-demo: 6.3 M parameters each (12.6 MB fp16, untied head), the rest of the 60 MB budget
    "baichuan": dict(hidden=256, heads=4, layers=4, inter=704),
    "llama": dict(hidden=256, heads=4, layers=4, inter=704),
}
FOLDERS = {"chatglm": "glm-demo", "baichuan": "baichuan-demo", "llama": "llama-demo"}


def round64(n):
    return (n + 63) // 64 * 64


def glm_ids(sp_pieces):
    """Special ids of a slim ChatGLM vocabulary whose last eight pieces are the GLM specials."""
    first = sp_pieces - len(C.GLM_SPECIALS)
    return {s: first + i for i, s in enumerate(C.GLM_SPECIALS)}


def config_dict(kind, sp_pieces):
    s = SIZES[kind]
    if kind == "chatglm":
        sid = glm_ids(sp_pieces)
        return {  # THUDM/chatglm-6b's config.json fields (slim), tiny sizes
            "_name_or_path": "THUDM/chatglm-6b",
            "architectures": ["ChatGLMModel"],
            "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig",
                         "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
                         "AutoModelForSeq2SeqLM": "modeling_chatglm.ChatGLMForConditionalGeneration"},
            "bos_token_id": sid["<sop>"], "eos_token_id": sid["<eop>"], "mask_token_id": sid["[MASK]"],
            "gmask_token_id": sid["[gMASK]"], "pad_token_id": 3,
            "hidden_size": s["hidden"], "inner_hidden_size": s["inner"], "layernorm_epsilon": 1e-05,
            "max_sequence_length": 2048, "model_type": "chatglm", "num_attention_heads": s["heads"],
            "num_layers": s["layers"], "position_encoding_2d": True, "torch_dtype": "float16",
            "transformers_version": "4.23.1", "use_cache": True, "vocab_size": round64(sp_pieces),
        }
    if kind == "baichuan":
        return {  # Baichuan-7B's config.json fields, tiny sizes
            "architectures": ["BaiChuanForCausalLM"],
            "auto_map": {"AutoConfig": "configuration_baichuan.BaiChuanConfig",
                         "AutoModelForCausalLM": "modeling_baichuan.BaiChuanForCausalLM"},
            "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": s["hidden"],
            "initializer_range": 0.02, "intermediate_size": s["inter"], "max_position_embeddings": 4096,
            "model_type": "baichuan", "num_attention_heads": s["heads"], "num_hidden_layers": s["layers"],
            "pad_token_id": 0, "rms_norm_eps": 1e-06, "tie_word_embeddings": False,
            "torch_dtype": "float16", "transformers_version": "4.29.1", "use_cache": True, "vocab_size": sp_pieces,
        }
    raise ValueError(kind)


def llama_config(sp_pieces):
    from transformers import LlamaConfig
    s = SIZES["llama"]
    cfg = LlamaConfig(vocab_size=sp_pieces, hidden_size=s["hidden"], intermediate_size=s["inter"],
                      num_hidden_layers=s["layers"], num_attention_heads=s["heads"], rms_norm_eps=1e-6,
                      max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      tie_word_embeddings=False, hidden_act="silu", initializer_range=0.02, use_cache=True)
    cfg.rope_theta = 10000.0  # not read by 4.30.2; newer readers expect it
    cfg.architectures = ["LlamaForCausalLM"]
    cfg.torch_dtype = torch.float16
    return cfg


def write_config(kind, folder, sp_pieces):
    if kind == "llama":
        llama_config(sp_pieces).save_pretrained(folder)
    else:
        C.dump_json(os.path.join(folder, "config.json"), config_dict(kind, sp_pieces))
    if kind == "baichuan":
        C.dump_json(os.path.join(folder, "generation_config.json"),
                    {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
                     "transformers_version": "4.29.1"})


# --------------------------------------------------------------------------------------------
# The real classes
# --------------------------------------------------------------------------------------------

def _xformers_stub():
    """Baichuan-7B's training path calls xformers' memory_efficient_attention with a causal mask; this is
    the same computation (softmax(q k^T / sqrt(d)) v over [B, S, heads, d]) with torch's SDPA."""
    if "xformers" in sys.modules:  # make_fixtures' stub (no attributes) may already be imported: fill it in
        xf = sys.modules["xformers"]
        ops = sys.modules.get("xformers.ops") or xf.ops
    else:
        xf = types.ModuleType("xformers")
        ops = types.ModuleType("xformers.ops")
    if hasattr(ops, "memory_efficient_attention"):
        return

    class LowerTriangularMask:
        pass

    def memory_efficient_attention(q, k, v, attn_bias=None):
        assert isinstance(attn_bias, LowerTriangularMask)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return o.transpose(1, 2)

    ops.LowerTriangularMask = LowerTriangularMask
    ops.memory_efficient_attention = memory_efficient_attention
    xf.ops = ops
    sys.modules["xformers"] = xf
    sys.modules["xformers.ops"] = ops


def new_model(kind, sp_pieces, seed):
    torch.manual_seed(seed)
    if kind == "chatglm":
        cg, mg, _ = mf.import_upstream_chatglm()
        d = config_dict(kind, sp_pieces)
        cfg = cg.ChatGLMConfig(**{k: v for k, v in d.items() if k not in ("architectures", "auto_map", "_name_or_path",
                                                                          "torch_dtype", "transformers_version")})
        # the upstream class builds fp16 parameters without initialising them (skip_init) and leaves lm_head
        # untied under transformers 4.30: train in fp32, tie lm_head to the embedding as the checkpoint has it
        m = mg.ChatGLMForConditionalGeneration(cfg).float()
        m.lm_head.weight = m.transformer.word_embeddings.weight
        init_chatglm(m, seed)
        return m
    if kind == "baichuan":
        _xformers_stub()
        cb, mb, _ = mf.import_upstream_baichuan()
        d = config_dict(kind, sp_pieces)
        cfg = cb.BaiChuanConfig(**{k: v for k, v in d.items() if k not in ("architectures", "auto_map", "torch_dtype",
                                                                           "transformers_version")})
        return mb.BaiChuanForCausalLM(cfg)
    from transformers import LlamaForCausalLM
    return LlamaForCausalLM(llama_config(sp_pieces))


def init_chatglm(m, seed):
    """The upstream class leaves its Linear layers uninitialised (skip_init: its checkpoints were never
    trained from scratch). Embedding N(0, 0.05), every other matrix N(0, 0.1), biases 0, LayerNorm 1/0:
    DeepNorm's residual is alpha·LN(x) with alpha = sqrt(56) (fixed by the upstream code, whatever the
    depth), so small sublayer weights barely move the output and training sits at the unigram loss
    (seen with N(0, 0.02/sqrt(2·layers)) and with N(0, 0.05): 6.84 nats after 225 steps)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("layernorm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                std = 0.05 if "word_embeddings" in name else 0.1
                p.copy_(torch.randn(p.shape, generator=g) * std)


def param_count(m):
    seen, n = set(), 0
    for p in m.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            n += p.numel()
    return n
