"""GGUF export of a merged Llama: written with the `gguf` package, read back with transformers'
own GGUF loader (`from_pretrained(folder, gguf_file=...)`), which undoes llama.cpp's Q/K permutation
and rebuilds the tokenizer from the file's metadata. Same logits, same token ids, same template."""

from __future__ import annotations

import json

import pytest
import torch

from studio.errors import StudioError

TEXTS = ["The quick brown fox jumps over the lazy dog.", "What is 12 + 30? 42", "你好，世界！", "  two  spaces\n"]


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    from test_export import make_base, make_run

    from studio.export import merge_model

    root = tmp_path_factory.mktemp("gguf")
    run = make_run(root, make_base(root / "base", tie=False), votes=False, evals=False)
    return merge_model(run, root / "out")


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.mark.parametrize("out_type,atol", [("f32", 1e-5), ("f16", 2e-2)])
def test_gguf_roundtrips_through_transformers(merged, tmp_path, out_type, atol):
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.export import export_gguf

    seen = []
    path = export_gguf(merged, tmp_path / f"tiny-{out_type}.gguf", out_type, progress=lambda f, m: seen.append(f))
    assert path.is_file() and seen[-1] == 1.0
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    assert reader.fields["tokenizer.ggml.add_bos_token"].contents() is False  # the HF tokenizer adds none
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "output.weight", "blk.1.attn_q.weight", "blk.1.ffn_down.weight"} <= names

    ref = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    ref_tok = AutoTokenizer.from_pretrained(merged)
    model, tok = _load(path)
    for text in TEXTS:
        assert tok(text)["input_ids"] == ref_tok(text)["input_ids"], text
    ids = torch.tensor([ref_tok(TEXTS[0])["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref(ids).logits, atol=atol, rtol=0)
    assert tok.chat_template == ref_tok.chat_template
    assert tok.eos_token == "<|im_end|>"


def test_gguf_tied_embeddings_and_llama3_rope(tmp_path):
    """Tied models drop output.weight (llama.cpp reuses token_embd); Llama 3.1 RoPE scaling adds rope_freqs."""
    import gguf

    from test_export import make_base

    from studio.export import export_gguf

    base = make_base(tmp_path / "m", tie=True, rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    path = export_gguf(base, tmp_path / "m.gguf", "f32")
    names = {t.name for t in gguf.GGUFReader(path).tensors}
    assert "output.weight" not in names and "rope_freqs.weight" in names
    model, _ = _load(path)
    assert model.config.tie_word_embeddings


def test_gguf_refuses_what_it_cannot_write_well(merged, tmp_path):
    import shutil

    from studio.export import export_gguf, gguf_support

    other = tmp_path / "other"
    shutil.copytree(merged, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen2"}))
    assert "convert_hf_to_gguf.py" in gguf_support(other).text("en")
    with pytest.raises(StudioError, match="Llama-architecture"):
        export_gguf(other, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()
    with pytest.raises(StudioError, match="GGUF type"):
        export_gguf(merged, tmp_path / "x.gguf", "q4_0")
