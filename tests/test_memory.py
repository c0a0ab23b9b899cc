"""studio.memory: the arithmetic, the fit verdict, the recommendations, the chart, and `studio estimate`."""

from __future__ import annotations

import json
import sys
import time

import pytest

from studio import memory
from studio.cli import main as cli_main
from studio.config import RunConfig
from studio.errors import StudioError
from studio.memory import GiB, ModelDims, dims_from_config, estimate
from studio.models import catalog

Q7 = catalog.get("qwen2.5-7b-instruct").dims
L8 = catalog.get("llama-3.1-8b-instruct").dims


def test_module_does_not_import_torch():
    import subprocess

    code = "import sys, studio.memory; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_estimate_is_fast():
    estimate(Q7, "lora")  # warm
    t = time.perf_counter()
    for _ in range(20):
        estimate(Q7, "qlora", batch_size=4, seq_len=4096, gradient_checkpointing=False, capacity_bytes=24 * GiB)
    assert (time.perf_counter() - t) / 20 < 0.05


def test_breakdown_sums_to_total_and_has_every_component():
    e = estimate(Q7, "lora", batch_size=2, seq_len=1024, capacity_bytes=24 * GiB)
    assert set(e.breakdown) == {"weights", "trainable", "gradients", "optimizer", "activations", "logits", "overhead"}
    assert sum(e.breakdown.values()) == e.total_bytes
    assert e.allocated_bytes == e.total_bytes - e.breakdown["overhead"]
    assert isinstance(e.total_bytes, int)


def test_nf4_double_quant_is_about_052_bytes_per_weight_and_skips_embeddings():
    e = estimate(L8, "qlora", precision="bf16")
    non_linear = L8.param_count - L8.linear_params
    per = (e.breakdown["weights"] - non_linear * 2) / L8.linear_params
    assert per == pytest.approx(0.516, abs=0.005)
    no_dq = estimate(L8, "qlora", double_quant=False)
    assert no_dq.breakdown["weights"] > e.breakdown["weights"]
    # embeddings and output head stay 16-bit: for Llama 3 8B that is over 2 GB of the ~5.7 GB
    assert non_linear * 2 > 2e9
    assert 5.4e9 < e.breakdown["weights"] < 6.0e9


def test_weights_by_method_and_precision():
    full = estimate(L8, "full")
    lora = estimate(L8, "lora")
    assert full.breakdown["weights"] == lora.breakdown["weights"] == L8.param_count * 2
    assert full.breakdown["gradients"] >= 0 and full.trainable_params == L8.param_count
    # pure bf16 full fine-tuning: 2 (weights) + 2 (grads) + 4 (AdamW states) bytes per parameter at least
    assert full.allocated_bytes >= 8 * L8.param_count
    mixed = estimate(L8, "full", precision="fp16")  # fp32 master weights under fp16 autocast
    assert mixed.allocated_bytes >= 16 * L8.param_count
    fp32 = estimate(L8, "lora", precision="fp32")
    assert fp32.breakdown["weights"] == L8.param_count * 4
    eight = estimate(L8, "qlora", quant_bits=8)
    assert estimate(L8, "qlora").breakdown["weights"] < eight.breakdown["weights"] < lora.breakdown["weights"]


def test_lora_trainable_parameters_match_peft_counts():
    # PEFT's count for Llama-2-7B, r=8 on q_proj and v_proj, is 4,194,304 (litgpt's resource table agrees)
    llama2 = ModelDims(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                       intermediate_size=11008, vocab_size=32000)
    assert memory.lora_param_count(llama2, 8, "q_proj,v_proj") == 4_194_304
    # Qwen2.5-7B all-linear r=16: 40,370,176
    assert memory.lora_param_count(Q7, 16, "all-linear") == 40_370_176
    e = estimate(Q7, "lora", lora_rank=16)
    assert e.breakdown["trainable"] == 40_370_176 * 4  # PEFT keeps adapters in fp32
    assert e.breakdown["optimizer"] == 40_370_176 * 8
    assert estimate(Q7, "qlora", lora_rank=16).breakdown["trainable"] == 40_370_176 * 2  # TRL: bf16 on a 4-bit base


def test_target_modules_resolution():
    assert memory.resolve_target_modules(Q7, "q_proj, v_proj") == ["q_proj", "v_proj"]
    phi = catalog.get("phi-3.5-mini-instruct").dims
    assert memory.resolve_target_modules(phi, "q_proj,v_proj") == ["qkv_proj"]  # fused
    glm = catalog.get("chatglm3-6b").dims
    assert "query_key_value" in memory.resolve_target_modules(glm, "all-linear")
    with pytest.raises(StudioError, match="target modules"):
        memory.resolve_target_modules(Q7, "nonexistent")


def test_memory_grows_with_batch_and_sequence_and_shrinks_with_checkpointing():
    a = estimate(Q7, "lora", batch_size=1, seq_len=1024, gradient_checkpointing=False)
    b = estimate(Q7, "lora", batch_size=2, seq_len=1024, gradient_checkpointing=False)
    c = estimate(Q7, "lora", batch_size=1, seq_len=2048, gradient_checkpointing=False)
    g = estimate(Q7, "lora", batch_size=1, seq_len=1024, gradient_checkpointing=True)
    assert b.total_bytes > a.total_bytes and c.total_bytes > a.total_bytes
    assert g.breakdown["activations"] < a.breakdown["activations"] / 4
    # without checkpointing, activations are linear in tokens
    assert b.breakdown["activations"] == pytest.approx(2 * a.breakdown["activations"], rel=0.05)


def test_logits_dominate_for_large_vocabularies():
    e = estimate(L8, "qlora", batch_size=1, seq_len=16384, gradient_checkpointing=True, loss="hf")
    assert e.breakdown["logits"] == pytest.approx(16384 * 128256 * 12, rel=0.01)
    assert e.breakdown["logits"] > e.breakdown["weights"]
    fused = estimate(L8, "qlora", batch_size=1, seq_len=16384, gradient_checkpointing=True, loss="fused")
    assert fused.total_bytes < e.total_bytes / 2
    mistral = catalog.get("mistral-7b-instruct-v0.3").dims  # 32K vocabulary: logits 4x smaller
    assert estimate(mistral, "qlora", seq_len=16384, loss="hf").breakdown["logits"] < e.breakdown["logits"] / 3


def test_eager_attention_is_quadratic():
    short = estimate(Q7, "lora", seq_len=1024, gradient_checkpointing=False, attention="eager")
    long = estimate(Q7, "lora", seq_len=4096, gradient_checkpointing=False, attention="eager")
    sdpa = estimate(Q7, "lora", seq_len=4096, gradient_checkpointing=False, attention="sdpa")
    assert long.breakdown["activations"] > 6 * short.breakdown["activations"]
    assert sdpa.breakdown["activations"] < long.breakdown["activations"] / 2


def test_dpo_doubles_rows_and_grad_accum_keeps_full_grads():
    sft = estimate(Q7, "lora", batch_size=2, seq_len=1024, gradient_checkpointing=False)
    dpo = estimate(Q7, "lora", batch_size=2, seq_len=1024, gradient_checkpointing=False, stage="dpo")
    assert dpo.breakdown["activations"] > 1.8 * sft.breakdown["activations"]
    small = catalog.get("qwen2.5-0.5b-instruct").dims
    one = estimate(small, "full", grad_accum=1)
    many = estimate(small, "full", grad_accum=8)
    assert many.total_bytes > one.total_bytes


def test_optimizer_choices():
    small = catalog.get("qwen2.5-1.5b-instruct").dims
    adam = estimate(small, "full")
    eight = estimate(small, "full", optimizer="adamw_8bit")
    assert eight.breakdown["optimizer"] < adam.breakdown["optimizer"] / 1.9
    assert estimate(small, "full", optimizer="paged_adamw_8bit").assumptions


def test_cpu_estimate_is_ram_with_process_overhead():
    emb = catalog.get("embedded").dims
    e = estimate(emb, "lora", batch_size=8, seq_len=256, precision="fp32", device="cpu", gradient_checkpointing=True)
    assert e.device == "cpu"
    assert e.breakdown["overhead"] >= GiB
    assert 1.5 * GiB < e.total_bytes < 12 * GiB


def test_verdicts():
    e = estimate(Q7, "lora", capacity_bytes=200 * GiB)
    assert e.verdict == "fits" and e.fits is True
    tight = estimate(Q7, "lora", capacity_bytes=int(e.total_bytes / 0.85))
    assert tight.verdict == "tight" and tight.fits is True
    no = estimate(Q7, "lora", capacity_bytes=8 * GiB)
    assert no.verdict == "does not fit" and no.fits is False
    unknown = estimate(Q7, "lora")
    assert unknown.verdict is None and unknown.fits is None


def test_recommendations_are_ranked_recomputed_and_structured():
    e = estimate(Q7, "lora", batch_size=4, seq_len=2048, gradient_checkpointing=False, capacity_bytes=24 * GiB)
    recs = memory.recommendations(Q7, e, catalog_models=catalog.load())
    assert recs, "a setup that does not fit must come with advice"
    first = recs[0]
    assert first.change == {"gradient_checkpointing": True}
    assert first.text.startswith("turn on gradient checkpointing: ")
    assert f"{e.total_gib:.1f} GiB → " in first.text
    assert first.text.endswith(("fits", "tight", "does not fit"))
    for r in recs:
        assert r.total_bytes < e.total_bytes
        assert isinstance(r.fits, bool) and r.cost
        d = r.to_dict()
        assert set(d) >= {"text", "change", "total_bytes", "fits", "verdict"}
    # re-applying a change reproduces its number
    again = estimate(Q7, "lora", batch_size=4, seq_len=2048, gradient_checkpointing=True, capacity_bytes=24 * GiB)
    assert again.total_bytes == first.total_bytes
    assert any("model" in r.change for r in recs)
    assert any(r.fits for r in recs)


def test_no_recommendations_when_it_fits_or_without_capacity():
    ok = estimate(Q7, "qlora", capacity_bytes=80 * GiB)
    assert memory.recommendations(Q7, ok) == []
    assert memory.recommendations(Q7, estimate(Q7, "lora")) == []


def test_largest_fitting_catalog_model():
    setup = estimate(Q7, "qlora", seq_len=1024).setup
    best80, _ = memory.largest_fitting_model(catalog.load(), 80 * GiB, setup)
    best16, _ = memory.largest_fitting_model(catalog.load(), 16 * GiB, setup)
    assert best80.dims.param_count > best16.dims.param_count
    assert best80.params_b >= 30
    assert memory.largest_fitting_model(catalog.load(), 1 * GiB, setup) is None


def test_breakdown_figure():
    e = estimate(Q7, "lora", capacity_bytes=24 * GiB)
    fig = memory.breakdown_figure(e)
    names = [t.name for t in fig.data]
    assert "Model weights" in names and "Activations" in names
    assert fig.layout.barmode == "stack"
    zh = memory.breakdown_figure(e, lang="zh")
    assert "模型权重" in [t.name for t in zh.data]


def test_dims_from_config_dict_and_folder(tmp_path):
    cfg = {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
           "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936, "tie_word_embeddings": True}
    d = dims_from_config(cfg)
    assert d.param_count == catalog.get("qwen2.5-0.5b-instruct").dims.param_count
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert dims_from_config(tmp_path) == dims_from_config(tmp_path / "config.json")
    glm = dims_from_config({"model_type": "chatglm", "hidden_size": 4096, "num_layers": 28, "num_attention_heads": 32,
                            "multi_query_group_num": 2, "multi_query_attention": True, "ffn_hidden_size": 13696,
                            "padded_vocab_size": 65024, "kv_channels": 128, "add_qkv_bias": True})
    assert glm.param_count == pytest.approx(6.24e9, rel=0.01)
    qwen1 = dims_from_config({"model_type": "qwen", "hidden_size": 4096, "num_hidden_layers": 32,
                              "num_attention_heads": 32, "intermediate_size": 22016, "vocab_size": 151936})
    assert qwen1.intermediate_size == 11008 and qwen1.param_count == pytest.approx(7.72e9, rel=0.01)
    vlm = dims_from_config({"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "hidden_size": 2560,
                            "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4,
                            "head_dim": 256, "intermediate_size": 10240, "vocab_size": 262208}})
    assert vlm.head_size == 256


@pytest.mark.parametrize("cfg,match", [
    ({"model_type": "mamba", "hidden_size": 8}, "Unknown architecture"),
    ({"hidden_size": 8}, "no model_type"),
    ({"model_type": "llama", "hidden_size": 64}, "lacks"),
    ({"model_type": "mixtral", "hidden_size": 64, "num_local_experts": 8}, "Unknown architecture|mixture"),
    ({"model_type": "qwen3", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 128, "vocab_size": 100, "num_experts": 8}, "mixture-of-experts"),
    ({"model_type": "llama", "hidden_size": "big", "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 128, "vocab_size": 100}, "whole numbers"),
    ({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 3, "intermediate_size": 128, "vocab_size": 100}, "inconsistent"),
])
def test_bad_configs_raise_one_sentence(cfg, match):
    with pytest.raises(StudioError, match=match) as ei:
        dims_from_config(cfg)
    assert "\n" not in str(ei.value)


def test_bad_folder_and_malformed_json(tmp_path):
    with pytest.raises(StudioError, match="no config.json"):
        dims_from_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(StudioError, match="not valid JSON"):
        dims_from_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(StudioError, match="JSON object"):
        dims_from_config(tmp_path)


@pytest.mark.parametrize("kw,match", [
    (dict(batch_size=-1), "batch size"), (dict(batch_size=0), "batch size"), (dict(seq_len=0), "sequence length"),
    (dict(lora_rank=0), "rank"), (dict(precision="int3"), "precision"), (dict(optimizer="lion"), "optimizer"),
    (dict(quant_bits=3), "4 or 8"), (dict(device="tpu"), "device"),
])
def test_bad_arguments_raise(kw, match):
    method = "qlora" if "quant_bits" in kw else "lora"
    with pytest.raises(StudioError, match=match):
        estimate(Q7, method, **kw)
    with pytest.raises(StudioError, match="method"):
        estimate(Q7, "prefix")


# ---- the CLI contract -------------------------------------------------------------------------

def _run_cli(capsys, *args):
    rc = cli_main(["estimate", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_json_contract(capsys):
    rc, out, err = _run_cli(capsys, "--model", "qwen2.5-7b-instruct", "--method", "lora", "--batch-size", "4",
                            "--seq-len", "2048", "--no-gradient-checkpointing", "--lora-rank", "16",
                            "--gpu-memory-gib", "24", "--json")
    assert rc == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1
    d = json.loads(lines[0])
    assert isinstance(d["total_bytes"], int) and d["total_bytes"] > 0
    assert sum(d["breakdown"].values()) == d["total_bytes"]
    assert d["fits"] is False
    assert isinstance(d["recommendations"], list) and all(isinstance(r, str) for r in d["recommendations"])
    assert d["recommendations"][0].startswith("turn on gradient checkpointing")


def test_cli_names_the_loss_head_and_gives_the_studio_train_total(capsys, monkeypatch):
    """The CLI assumes a plain transformers loop (hf) unless told; `studio train` and the Model tab use TRL's
    chunked loss: the output names the one assumed and gives the studio train figure too."""
    args = ["--model", "qwen2.5-7b-instruct", "--method", "lora", "--batch-size", "4", "--seq-len", "2048",
            "--gpu-memory-gib", "24"]
    monkeypatch.setattr(memory, "engine_loss", lambda: "fused")  # TRL >= 1.0
    rc, out, err = _run_cli(capsys, *args, "--json")
    assert rc == 0, err
    hf = json.loads(out)
    kw = dict(batch_size=4, seq_len=2048, gradient_checkpointing=True, lora_rank=8, device="cuda")
    assert hf["loss"] == "hf" and hf["setup"]["loss"] == "hf"
    assert hf["total_bytes"] == estimate(Q7, "lora", loss="hf", **kw).total_bytes
    assert hf["studio_train_loss"] == "fused"
    # studio train packs SFT rows on CUDA (padding-free): the run plan says so, and the CLI gives its figure
    assert hf["studio_train_total_bytes"] == estimate(Q7, "lora", loss="fused", packing=True, **kw).total_bytes
    assert hf["plan"]["packing"] is True and hf["plan"]["total_bytes"] == hf["studio_train_total_bytes"]
    assert hf["studio_train_total_bytes"] < hf["total_bytes"] - 10 * GiB  # Qwen's 152K vocabulary: the full logits
    rc, out, _ = _run_cli(capsys, *args, "--loss", "fused", "--json")
    fused = json.loads(out)
    assert fused["loss"] == "fused" and fused["total_bytes"] == hf["studio_train_total_bytes"]
    assert fused["studio_train_total_bytes"] == fused["total_bytes"]
    rc, out, _ = _run_cli(capsys, *args)
    assert "Loss head assumed: hf" in out
    line = next(x for x in out.splitlines() if x.startswith("With `studio train`"))
    assert "fused" in line and memory.format_bytes(hf["studio_train_total_bytes"]) in line
    with pytest.raises(SystemExit):
        _run_cli(capsys, *args, "--loss", "chunked")  # argparse: only hf or fused
    with pytest.raises(SystemExit):
        cli_main(["estimate", "--help"])
    assert "--loss {hf,fused}" in capsys.readouterr().out


def test_cli_fits_and_human_output(capsys):
    rc, out, _ = _run_cli(capsys, "--model", "embedded", "--method", "lora", "--gpu-memory-gib", "16", "--json")
    d = json.loads(out)
    assert rc == 0 and d["fits"] is True and d["recommendations"] == []
    rc, out, _ = _run_cli(capsys, "--model", "llama-3.1-8b-instruct", "--method", "qlora", "--gpu-memory-gib", "8")
    assert rc == 0 and "Total" in out and "GiB" in out


def test_cli_local_folder(tmp_path, capsys):
    cfg = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
           "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rc, out, _ = _run_cli(capsys, "--model", str(tmp_path), "--method", "full", "--gpu-memory-gib", "4", "--json")
    assert rc == 0 and json.loads(out)["param_count"] == catalog.get("embedded").dims.param_count


@pytest.mark.parametrize("args,match", [
    (["--model", "/nonexistent/folder", "--method", "lora"], "config.json"),
    (["--model", "qwen2.5-7b-instruct", "--method", "lora", "--batch-size", "-2"], "batch size"),
    (["--model", "not-a-model", "--method", "lora"], "catalog"),
])
def test_cli_bad_input_is_one_line_exit_1(capsys, args, match):
    rc, out, err = _run_cli(capsys, *args)
    assert rc == 1
    assert err.count("\n") == 1 and err.startswith("studio estimate: ")
    assert match in err


def test_cli_folder_without_config(tmp_path, capsys):
    rc, _, err = _run_cli(capsys, "--model", str(tmp_path), "--method", "lora")
    assert rc == 1 and "no config.json" in err


def test_cli_hub_id_offline_is_one_sentence(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    rc, _, err = _run_cli(capsys, "--model", "some-owner/some-model-xyz", "--method", "lora")
    assert rc == 1 and err.count("\n") == 1


