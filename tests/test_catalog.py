"""presets/models.yaml through studio.models.catalog: every entry complete, and its arithmetic right."""

from __future__ import annotations

import pytest

from studio.errors import StudioError
from studio.models import catalog

REQUIRED_HUB_IDS = [
    "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3", "google/gemma-2-2b-it",
    "microsoft/Phi-3.5-mini-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct",
    "HuggingFaceTB/SmolLM2-1.7B-Instruct", "THUDM/chatglm3-6b",
]

ENTRIES = catalog.load()


def test_at_least_15_chat_models_including_the_required_ones():
    instruct = [e for e in ENTRIES if e.kind == "instruct" and e.id != "embedded"]
    assert len(instruct) >= 15
    hubs = {e.hub_id for e in ENTRIES}
    for h in REQUIRED_HUB_IDS:
        assert h in hubs, h
    assert any(e.hub_id.startswith("deepseek-ai/DeepSeek-R1-Distill-Qwen") for e in ENTRIES)
    assert any(e.kind == "base" for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_parameter_count_from_dims_within_3_percent(entry):
    computed = entry.dims.param_count / 1e9
    assert abs(computed - entry.params_b) / entry.params_b <= 0.03, (computed, entry.params_b)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_entry_is_complete(entry):
    assert entry.id and entry.id == entry.id.lower() and " " not in entry.id
    assert "/" in entry.hub_id
    assert entry.languages and entry.licence
    assert entry.notes().strip() and entry.notes("zh").strip() and entry.notes("zh") != entry.notes()
    assert entry.kind in ("instruct", "base") and entry.kind_note() and entry.kind_note("zh") != entry.kind_note()
    assert isinstance(entry.needs_remote_code, bool)
    d = entry.dims
    assert d.num_attention_heads % d.num_key_value_heads == 0
    assert entry.label() and entry.label("zh")
    assert entry.to_dict()["param_count"] == d.param_count


def test_remote_code_only_where_needed():
    assert catalog.get("chatglm3-6b").needs_remote_code is True
    assert not any(e.needs_remote_code for e in ENTRIES if e.id != "chatglm3-6b")


def test_embedded_entry_matches_smollm2_135m():
    e = catalog.get("embedded")
    d = e.dims
    assert (d.hidden_size, d.num_hidden_layers, d.num_attention_heads, d.num_key_value_heads,
            d.intermediate_size, d.vocab_size, d.tie_word_embeddings) == (576, 30, 9, 3, 1536, 49152, True)
    assert e.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert d.param_count == pytest.approx(134.5e6, rel=0.005)  # FACTS.md: 134.5M parameters


def test_dims_copied_from_config_json_spot_checks():
    q = catalog.get("qwen2.5-7b-instruct").dims
    assert (q.hidden_size, q.intermediate_size, q.num_key_value_heads, q.vocab_size, q.tie_word_embeddings) == \
        (3584, 18944, 4, 152064, False)
    g = catalog.get("gemma-2-2b-it").dims
    assert g.head_size == 256 and g.q_dim == 2048 and g.vocab_size == 256000 and g.tie_word_embeddings
    assert catalog.get("llama-3.2-1b-instruct").dims.head_size == 64
    assert catalog.get("phi-3.5-mini-instruct").dims.vocab_size == 32064


def test_lookup_and_search():
    assert catalog.get("Qwen/Qwen2.5-7B-Instruct").id == "qwen2.5-7b-instruct"
    assert catalog.get("QWEN2.5-7B-INSTRUCT").id == "qwen2.5-7b-instruct"
    with pytest.raises(StudioError, match="not in the model catalog"):
        catalog.get("gpt-5")
    zh = catalog.search(language="zh")
    assert "chatglm3-6b" in {e.id for e in zh} and "mistral-7b-instruct-v0.3" not in {e.id for e in zh}
    assert [e.id for e in catalog.search("qwen 7b")][:1] == ["qwen2.5-7b-instruct"]
    assert all(e.params_b <= 2 for e in catalog.search(max_params_b=2))
    assert {e.kind for e in catalog.search(kind="base")} == {"base"}
    small = catalog.search()
    assert [e.params_b for e in small] == sorted(e.params_b for e in small)


def test_resolve_dims(tmp_path, monkeypatch):
    d, src = catalog.resolve_dims("embedded")
    assert src.startswith("catalog") and d.hidden_size == 576
    with pytest.raises(StudioError, match="no config.json"):
        catalog.resolve_dims(str(tmp_path))
    with pytest.raises(StudioError):
        catalog.resolve_dims("")
    with pytest.raises(StudioError, match="neither"):
        catalog.resolve_dims("just-a-name")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(StudioError) as ei:
        catalog.resolve_dims("someone/unknown-model")
    assert "\n" not in str(ei.value)
