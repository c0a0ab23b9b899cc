"""A merged Llama-architecture model as one GGUF file (f16, f32, or quantized: Q8_0, Q4_0) for llama.cpp / Ollama.

transformers reads GGUF but does not write it, and llama.cpp's converter (convert_hf_to_gguf.py) is
not in the `gguf` package. For the Llama architecture (Llama 2/3, SmolLM, TinyLlama, ...) with a
byte-level BPE tokenizer, the `gguf` package has every piece: the writer, the tensor-name map, the
metadata keys and the special-token reader. What is left is llama.cpp's Q/K row permutation and
picking the pre-tokenizer name, done below the way convert_hf_to_gguf.py does them. Anything else
(other architectures, sentencepiece vocabularies, unusual RoPE scaling) is refused with a sentence
rather than written half right.

Quantized files are quantized by the `gguf` package itself (`gguf.quants.quantize`); a type it has no
quantizer for (Q4_K in gguf 0.19) is not offered: no quantizer of our own.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from studio.errors import StudioError
from studio.export.source import Progress, noop, read_json
from studio.messages import Msg

FLOAT_TYPES = ("f16", "f32")
# Quantized types worth offering, best first; each is offered only where `gguf.quants` can write it.
QUANT_CANDIDATES = ("q8_0", "q4_k", "q4_0")


@functools.lru_cache(maxsize=1)
def quant_types() -> tuple[str, ...]:
    """The quantized types the installed `gguf` package can write (it can read more than it can write)."""
    import numpy as np
    from gguf import GGMLQuantizationType, quants

    out = []
    for name in QUANT_CANDIDATES:
        qtype = GGMLQuantizationType[name.upper()]
        try:
            quants.quantize(np.zeros((1, 256), dtype=np.float32), qtype)
        except (NotImplementedError, KeyError, AttributeError):
            continue
        out.append(name)
    return tuple(out)


GGUF_TYPES = FLOAT_TYPES + quant_types()

# The split regex of Llama 3's tokenizer.json (llama.cpp calls this pre-tokenizer "llama-bpe").
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _gguf_pre_tokenizer(tokenizer_json: dict) -> str | None:
    """llama.cpp's name for how this byte-level BPE tokenizer splits text before merging, or None
    when it is not one we can name with certainty."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"  # GPT-2's split after cutting numbers into single digits
    if (kinds == ["Split", "ByteLevel"] and (parts[0].get("pattern") or {}).get("Regex") == _LLAMA3_SPLIT
            and not parts[1].get("use_regex", True)):
        return "llama-bpe"
    return None


def _permute_qk(w, n_head: int):
    """HF stores rotary Q/K rows as two halves; llama.cpp expects them interleaved in pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _llama3_rope_factors(rope: dict, theta: float, head_dim: int):
    """The per-frequency factors llama.cpp reads from `rope_freqs.weight` for Llama 3.1+ RoPE scaling
    (the same arithmetic as transformers' `_compute_llama3_parameters`)."""
    import numpy as np

    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def _adds_bos_eos(model_dir: Path) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok("a")["input_ids"]
    return {"bos": tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id],
            "eos": tok.eos_token_id is not None and ids[-1:] == [tok.eos_token_id]}


def gguf_support(model_dir: str | Path) -> Msg | None:
    """None when `model_dir` can be written as GGUF here, else the message that says why not."""
    model_dir = Path(model_dir)
    stamps = tuple(_stamp(model_dir / f) for f in ("config.json", "tokenizer.json"))
    return _gguf_support(str(model_dir), stamps)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _gguf_support(model_dir: str, stamps: tuple) -> Msg | None:
    """gguf_support, once per version of the folder's files: the Export tab asks on every page load, and
    parsing a tokenizer.json takes 100 ms or more."""
    model_dir = Path(model_dir)
    cfg = read_json(model_dir / "config.json")
    if cfg.get("model_type") != "llama":
        return Msg("export.gguf.arch", model_type=str(cfg.get("model_type")))
    tj = read_json(model_dir / "tokenizer.json")
    model = tj.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or (tj.get("decoder") or {}).get("type") != "ByteLevel":
        return Msg("export.gguf.tokenizer")
    if _gguf_pre_tokenizer(tj) is None:
        return Msg("export.gguf.pre_tokenizer")
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if (rope.get("rope_type") or rope.get("type") or "default") not in ("default", "llama3", "linear"):
        return Msg("export.gguf.rope", kind=str(rope.get("rope_type") or rope.get("type")))
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        return Msg("export.gguf.bias")
    return None


def _file_type(out_type: str):
    import gguf

    return {"f16": gguf.LlamaFileType.MOSTLY_F16, "f32": gguf.LlamaFileType.ALL_F32,
            "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
            "q4_k": gguf.LlamaFileType.MOSTLY_Q4_K_S}[out_type]


def _tensor_type(out_type: str, shape: list[int]):
    """How one tensor is stored: llama.cpp keeps 1-D tensors (norms, rope factors) in f32; a quantized
    file quantizes each matrix whose rows split into whole blocks, and keeps the others in f16."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T

    if len(shape) < 2 or out_type == "f32":
        return T.F32
    if out_type == "f16":
        return T.F16
    qtype = T[out_type.upper()]
    return qtype if shape[-1] % GGML_QUANT_SIZES[qtype][0] == 0 else T.F16


def write_gguf(model_dir: str | Path, out_file: str | Path, out_type: str = "f16",
               progress: Progress | None = None) -> Path:
    """A merged Llama-architecture model folder as one GGUF file (f16, f32 or one of `quant_types()`),
    tensor by tensor so that only one weight is in memory at a time. Loads in llama.cpp / Ollama and in
    transformers (`from_pretrained(folder, gguf_file=name)`)."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    progress = progress or noop
    model_dir, out_file = Path(model_dir), Path(out_file)
    if out_type not in GGUF_TYPES:
        raise StudioError("export.gguf.type", types=list(GGUF_TYPES))
    problem = gguf_support(model_dir)
    if problem:
        raise StudioError(problem)
    cfg = read_json(model_dir / "config.json")
    tj = read_json(model_dir / "tokenizer.json")
    n_head, n_layer = cfg["num_attention_heads"], cfg["num_hidden_layers"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = rope.get("rope_theta") or cfg.get("rope_theta") or 10000.0
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    vocab_size = cfg["vocab_size"]

    progress(0.02, Msg("export.progress.gguf_header"))
    tmp = out_file.with_name(f".{out_file.name}.partial")
    w = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(model_dir.parent.name if model_dir.name in ("merged", "model") else model_dir.name)
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(n_layer)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(float(theta))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    w.add_vocab_size(vocab_size)
    w.add_file_type(_file_type(out_type))
    if rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))

    # Vocabulary, typed the way llama.cpp's converter types it: added special tokens are CONTROL,
    # other added tokens USER_DEFINED, ids the tokenizer lacks (padding up to vocab_size) UNUSED.
    added = {t["id"]: t for t in tj.get("added_tokens", [])}
    reverse = {i: t for t, i in tj["model"]["vocab"].items()}
    reverse.update({i: t["content"] for i, t in added.items()})
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            token = reverse[i]
            tokens.append(token)
            # Like the converter: an added token spelled <|...|> is a control token even when not marked special.
            special = i in added and (added[i].get("special") or (token.startswith("<|") and token.endswith("|>")))
            types.append(gguf.TokenType.NORMAL if i not in added else
                         gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_gguf_pre_tokenizer(tj))
    w.add_token_list(tokens)
    w.add_token_types(types)
    # Merges, bos/eos/pad/unk ids and the chat template, read by gguf's own reader. Whether a BOS/EOS
    # is added to a prompt is taken from what the tokenizer really does: llama.cpp otherwise guesses
    # (and adds a BOS to SmolLM prompts, which the model never saw in training).
    special_vocab = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    special_vocab.add_special_token.update(_adds_bos_eos(model_dir))
    special_vocab.add_to_gguf(w, quiet=True)

    # Tensors: declare them all first, then stream the data in the same order.
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    index = read_json(model_dir / "model.safetensors.index.json").get("weight_map")
    files = sorted(set(index.values())) if index else ["model.safetensors"]
    plan = []  # (gguf name, file, hf name, kind)
    for fname in files:
        with safe_open(model_dir / fname, framework="pt") as f:
            for hf in f.keys():
                if hf == "lm_head.weight" and cfg.get("tie_word_embeddings"):
                    continue  # tied: llama.cpp reuses token_embd when output.weight is absent
                if hf.endswith("rotary_emb.inv_freq"):
                    continue
                base, _, suffix = hf.rpartition(".")
                mapped = names.get_name(base)
                if mapped is None:
                    raise StudioError("export.gguf.no_name", weight=hf)
                plan.append((f"{mapped}.{suffix}", fname, hf, list(f.get_slice(hf).get_shape())))
    if rope_type == "llama3":
        plan.append((gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", None, None, [head_dim // 2]))

    from gguf import GGMLQuantizationType as T, quants

    for name, _, _, shape in plan:
        qt = _tensor_type(out_type, shape)
        if qt in (T.F32, T.F16):
            dt = np.dtype(np.float32 if qt == T.F32 else np.float16)
            w.add_tensor_info(name, shape, dt, int(np.prod(shape)) * dt.itemsize)
        else:
            byte_shape = quants.quant_shape_to_byte_shape(shape, qt)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=qt)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        handles = {}
        try:
            for k, (name, fname, hf, shape) in enumerate(plan):
                if fname is None:
                    data = _llama3_rope_factors(rope, float(theta), head_dim)
                else:
                    if fname not in handles:
                        handles[fname] = safe_open(model_dir / fname, framework="pt")
                    data = handles[fname].get_tensor(hf).float().numpy()
                    if hf.endswith("q_proj.weight"):
                        data = _permute_qk(data, n_head)
                    elif hf.endswith("k_proj.weight"):
                        data = _permute_qk(data, n_kv)
                qt = _tensor_type(out_type, shape)
                if qt in (T.F32, T.F16):
                    data = data.astype(np.float32 if qt == T.F32 else np.float16)
                else:
                    data = quants.quantize(data.astype(np.float32), qt)
                w.write_tensor_data(np.ascontiguousarray(data))
                progress(0.05 + 0.93 * (k + 1) / len(plan), Msg("export.progress.gguf_tensor", name=name))
        finally:
            handles.clear()
            w.close()
        os.replace(tmp, out_file)
    finally:
        w.close()
        if tmp.exists():
            tmp.unlink()
    progress(1.0, Msg("export.progress.gguf_done", type=out_type))
    return out_file


def export_gguf(merged_dir: str | Path, out_file: str | Path, out_type: str = "f16",
                progress: Progress | None = None) -> Path:
    """out_file: the merged model as GGUF (see GGUF_TYPES) for llama.cpp / Ollama; Llama architecture only."""
    return write_gguf(merged_dir, out_file, out_type, progress)
