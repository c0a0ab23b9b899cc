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
        export_gguf(merged, tmp_path / "x.gguf", "q3_k")


# ---- quantized files, the Modelfile and the parity check ------------------------------------------

def test_quant_types_are_the_ones_gguf_can_write():
    """Only types the installed gguf package has a quantizer for (no quantizer of ours): Q8_0 and Q4_0
    in gguf 0.19, which reads Q4_K but cannot write it."""
    import numpy as np
    from gguf import GGMLQuantizationType, quants

    from studio.export.gguf import GGUF_TYPES, quant_types

    assert "q8_0" in quant_types() and "q4_0" in quant_types()
    assert set(quant_types()) <= set(GGUF_TYPES)
    for name in quant_types():
        quants.quantize(np.ones((1, 256), dtype=np.float32), GGMLQuantizationType[name.upper()])


@pytest.mark.parametrize("out_type", ["q8_0", "q4_0"])
def test_quantized_gguf_loads_back_and_mostly_agrees(merged, tmp_path, out_type):
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.export import export_gguf
    from studio.export.gguf import quant_types
    from studio.export.parity import compare, parity_prompts

    if out_type not in quant_types():
        pytest.skip(f"gguf cannot write {out_type}")
    path = export_gguf(merged, tmp_path / f"tiny-{out_type}.gguf", out_type)
    f16 = export_gguf(merged, tmp_path / "tiny-f16.gguf", "f16")
    reader = gguf.GGUFReader(path)
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == out_type.upper()
    assert kinds["blk.0.attn_norm.weight"] == "F32"  # 1-D tensors stay float
    assert path.stat().st_size < f16.stat().st_size

    ref = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(merged)
    model, _ = _load(path)
    got = compare(ref, model, tok, parity_prompts(None, 3), max_new_tokens=8)  # general questions only
    assert got["n"] == 3 and got["positions"] > 0
    assert 0.0 <= got["next_token_agreement"] <= 1.0 and 0.0 <= got["same_answers"] <= 1.0
    if out_type == "q8_0":  # 8 bits per weight keeps nearly every greedy choice
        assert got["next_token_agreement"] >= 0.8
    assert compare(ref, ref, tok, parity_prompts(None, 2), max_new_tokens=8)["next_token_agreement"] == 1.0


def test_modelfile_has_the_chat_template_and_stop_tokens(merged, tmp_path):
    from transformers import AutoTokenizer

    from studio.export.ollama import TEMPLATES, chat_format, modelfile_text, stop_tokens

    tok = AutoTokenizer.from_pretrained(merged)
    assert chat_format(tok) == ("chatml", "")
    text = modelfile_text(tok, "m-q8_0.gguf", ["m-f16.gguf"])
    assert text.startswith("FROM ./m-q8_0.gguf\n# FROM ./m-f16.gguf\n")
    assert 'TEMPLATE """' + TEMPLATES["chatml"] + '"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "<|im_end|>" in stop_tokens(tok)
    # A template with a default system prompt (SmolLM2's) carries it as SYSTEM.
    tok.chat_template = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nBe kind.<|im_end|>\n{% endif %}"
                         + tok.chat_template)
    assert chat_format(tok) == ("chatml", "Be kind.")
    assert 'SYSTEM """Be kind."""' in modelfile_text(tok, "m.gguf")
    tok.chat_template = "{% for m in messages %}### {{ m['content'] }}\n{% endfor %}"
    assert "TEMPLATE" not in modelfile_text(tok, "m.gguf")  # unknown: Ollama reads the GGUF's own


def test_export_run_writes_each_type_a_modelfile_and_parity(tmp_path):
    from test_export import make_base, make_run

    from studio import run_files
    from studio.export import export_run

    run = make_run(tmp_path, make_base(tmp_path / "base", tie=False), votes=False, evals=False)
    res = export_run(run, tmp_path / "out", adapter=False, gguf=True, gguf_types=["f16", "q8_0"])
    assert [f.name for f in res.gguf_files] == [f"{run.name}-f16.gguf", f"{run.name}-q8_0.gguf"]
    assert res.modelfile.read_text().startswith(f"FROM ./{run.name}-q8_0.gguf")
    downloads = res.downloads()
    assert all(str(f) in downloads for f in res.gguf_files) and str(res.modelfile) in downloads
    report = json.loads((run / run_files.GGUF_REPORT).read_text())["files"]
    assert [e["type"] for e in report] == ["f16", "q8_0"] and report[0]["size_bytes"] > report[1]["size_bytes"]
    assert report[0]["n"] == 2 + 4  # the run's two validation prompts and four general questions
    notes = [m.text("en") for m in res.notes]
    assert any("GGUF Q8_0" in n and "next token" in n for n in notes)
    card = res.card.read_text()
    assert "## GGUF files" in card and f"`{run.name}-q8_0.gguf`" in card and "ollama create" in card
