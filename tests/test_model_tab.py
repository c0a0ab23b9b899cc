"""The Model tab's handlers as plain functions (no browser), on fixed hardware so the numbers do not depend on
the machine running the tests; and the whole app built once with the tab in it."""

import json

import plotly.graph_objects as go
import pytest

from studio.ui import model_tab as mt
from studio.messages import catalog

GiB = 1024**3
NO_GPU = {"cuda": False, "mps": False, "gpus": [], "cpu_cores": 2, "ram_bytes": 16 * GiB, "cpu_bf16": False}
RTX_4090 = {"cuda": True, "mps": False, "cpu_cores": 16, "ram_bytes": 64 * GiB, "cpu_bf16": False,
            "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "total_bytes": 24 * GiB,
                      "free_bytes": 23 * GiB, "bf16": True}]}


def ev(lang="en", hw=RTX_4090, **settings):
    return mt.evaluate(settings, lang, hw=hw)


def test_catalog_pick_gives_verdict_figure_and_ctx_model():
    res = ev(model="qwen2.5-1.5b-instruct", gradient_checkpointing="on")
    assert res["ok"], res.get("error")
    assert res["verdict"] == "fits" and "Fits" in res["verdict_md"] and "24.0 GiB" in res["verdict_md"]
    assert "RTX 4090" in res["verdict_md"] and "RTX 4090" in res["hardware_md"]
    fig = res["figure"]
    assert isinstance(fig, go.Figure) and fig.layout.barmode == "stack"
    assert sum(tr.x[0] for tr in fig.data) == pytest.approx(res["estimate"].total_gib, rel=1e-3)
    assert "Qwen/Qwen2.5-1.5B-Instruct" in res["notes_md"] and "Apache-2.0" in res["notes_md"]
    assert "chat template" in res["notes_md"]  # base vs instruct explained
    assert "Optimizer states" in res["components_md"] and "AdamW" in res["components_md"]
    ctx = res["model_ctx"]
    assert ctx["name"] == "qwen2.5-1.5b-instruct" and ctx["method"] == "lora" and ctx["verdict"] == "fits"
    assert ctx["batch_size"] == 8 and ctx["max_length"] == 512 and ctx["lora_rank"] == 8
    assert ctx["estimate_bytes"] == res["plan"].total_bytes == res["estimate"].total_bytes
    assert ctx["gradient_checkpointing"] is True and ctx["quant_bits"] == 4 and ctx["grad_accum"] == 1
    assert set(ctx) >= {"precision", "target_modules"}
    # the Train tab turns it into its config
    from studio.engine.settings import with_model

    base = with_model({}, ctx)
    assert base["model"]["name"] == "qwen2.5-1.5b-instruct" and base["training"]["batch_size"] == 8


def test_batch_sequence_rank_and_method_move_the_estimate():
    def gib(**kw):
        return ev(**{"model": "qwen2.5-1.5b-instruct", "gradient_checkpointing": "on", **kw})["estimate"].total_bytes

    base = gib()
    assert gib(batch_size=16) > base and gib(max_length=2048) > base and gib(lora_rank=128) > base
    assert gib(method="full") > base > gib(method="qlora4")
    assert gib(method="qlora8") > gib(method="qlora4")
    assert gib(gradient_checkpointing="off") > base
    # values as a browser sends them: floats from gr.Number, strings from a Radio
    assert gib(batch_size=8.0, lora_rank="8") == base


def test_recommendation_applies_to_the_controls_and_the_verdict():
    s = {"model": "qwen2.5-7b-instruct", "batch_size": 8, "max_length": 1024, "gradient_checkpointing": "off"}
    res = mt.evaluate(s, hw=RTX_4090)
    assert res["verdict"] == "does not fit" and res["recommendations"]
    first = res["recommendations"][0]
    assert first["change"] == {"gradient_checkpointing": True} and "gradient checkpointing" in first["text"]
    for rec in res["recommendations"]:
        new = mt.change_settings(mt.normalise(s), rec["change"])
        after = mt.evaluate(new, hw=RTX_4090)
        # the number on the button is exactly what applying it shows
        assert after["estimate"].total_bytes == rec["total_bytes"] and after["verdict"] == rec["verdict"]
    fitting = next(r for r in res["recommendations"] if r["verdict"] != "does not fit")
    new = mt.change_settings(mt.normalise(s), fitting["change"])
    assert new != mt.normalise(s) and mt.evaluate(new, hw=RTX_4090)["verdict"] in ("fits", "tight")
    # the change dicts map onto the controls
    assert mt.change_settings(mt.normalise(s), {"method": "qlora", "quant_bits": 4})["method"] == "qlora4"
    assert mt.change_settings(mt.normalise(s), {"seq_len": 512})["max_length"] == 512
    assert mt.change_settings(mt.normalise(s), {"batch_size": 1, "grad_accum": 8})["grad_accum"] == 8
    assert mt.change_settings(mt.normalise(s), {"model": "qwen2.5-3b-instruct"})["model"] == "qwen2.5-3b-instruct"
    # on a GPU, full fine-tuning is offered the 8-bit optimizer: a training setting, applied to the control
    full_s = {**s, "model": "qwen2.5-1.5b-instruct", "method": "full"}
    full = mt.evaluate(full_s, hw=RTX_4090)
    optim = next(r for r in full["recommendations"] if r["change"] == {"optimizer": "adamw_8bit"})
    assert "8-bit AdamW" in optim["text"]
    applied = mt.change_settings(mt.normalise(full_s), optim["change"])
    assert applied["optimizer"] == "adamw_8bit"
    after = mt.evaluate(applied, hw=RTX_4090)
    assert after["estimate"].total_bytes == optim["total_bytes"] < full["estimate"].total_bytes
    assert after["model_ctx"]["optimizer"] == "adamw_8bit" and "NVIDIA GPU" not in after["verdict_md"]
    from studio.config import RunConfig
    from studio.engine.settings import with_model

    assert RunConfig.from_dict(with_model({}, after["model_ctx"])).training.optimizer == "adamw_8bit"
    # on this CPU it is never offered, and choosing it says training here would refuse it
    cpu = mt.evaluate({**full_s, "model": "qwen2.5-7b-instruct"}, hw=NO_GPU)
    assert cpu["estimate"].device == "cpu" and cpu["recommendations"]
    assert all("optimizer" not in r["change"] for r in cpu["recommendations"])
    cpu8 = mt.evaluate({**full_s, "optimizer": "adamw_8bit"}, hw=NO_GPU)
    assert "8-bit AdamW needs an NVIDIA GPU and bitsandbytes" in cpu8["verdict_md"]
    assert mt.evaluate({**full_s, "optimizer": "lion"}, hw=RTX_4090)["ok"] is False
    assert res["largest"]["id"] and "fits" in res["largest"]["md"]


def test_qlora_without_cuda_says_so_and_estimates_for_a_gpu():
    res = ev(hw=NO_GPU, model="qwen2.5-7b-instruct", method="qlora4")
    assert res["ok"] and "NVIDIA GPU" in res["verdict_md"] and "24 GiB" in res["verdict_md"]
    assert res["estimate"].device == "cuda" and res["estimate"].capacity_bytes == 24 * GiB
    res = ev(hw=NO_GPU, model="qwen2.5-7b-instruct", method="qlora4", target="12")
    assert res["estimate"].capacity_bytes == 12 * GiB and "NVIDIA GPU" in res["verdict_md"]
    lora = ev(hw=NO_GPU, model="smollm2-135m-instruct")  # LoRA on this CPU: checked against RAM
    assert lora["estimate"].device == "cpu" and "available to the app" in lora["verdict_md"]
    assert "FP32" in lora["verdict_md"]  # on a CPU the weights stay FP32, and the tab says so
    # on this CPU, QLoRA is no way to make a 7B fit: it is not offered
    big = ev(hw=NO_GPU, model="qwen2.5-7b-instruct")
    assert big["verdict"] == "does not fit" and big["recommendations"]
    assert all(r["change"].get("method") != "qlora" for r in big["recommendations"])


def test_bad_input_is_one_plain_sentence(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    alien = tmp_path / "alien"
    alien.mkdir()
    (alien / "config.json").write_text(json.dumps({"model_type": "martian", "hidden_size": 8}))
    cases = {str(empty): "config.json", str(broken): "not valid JSON", str(alien): "Unknown architecture",
             "no such thing": "neither a catalog id"}
    for name, words in cases.items():
        res = ev(model=name)
        assert not res["ok"] and words in res["error"] and res["verdict_md"].endswith(res["error"])
        assert "\n" not in res["error"] and "Traceback" not in res["error"]
        assert "model_ctx" not in res  # ctx.model keeps the last choice that worked
    res = ev(model="embedded", batch_size=-2)
    assert not res["ok"] and "batch size" in res["error"] and "-2" in res["error"]
    assert "martian" in mt.use_message(ev(model=str(alien)))


def test_local_folder_with_a_chat_template(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1000}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    res = ev(model=str(folder))
    assert res["ok"], res.get("error")
    assert "has a chat template" in res["notes_md"] and "llama" in res["notes_md"]
    assert res["model_ctx"]["name"] == str(folder)


def test_both_languages_and_the_catalog_table():
    zh = ev(lang="zh", model="qwen2.5-7b-instruct", max_length=2048, gradient_checkpointing="off")
    assert "放不下" in zh["verdict_md"] and "梯度" in zh["components_md"]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r["text"]) for r in zh["recommendations"])
    assert "峰值" in zh["figure"].layout.title.text
    table = mt.catalog_frame("chinese 7b")
    assert "qwen2.5-7b-instruct" in set(table.iloc[:, 0]) and "smollm2-135m-instruct" not in set(table.iloc[:, 0])
    assert list(mt.catalog_frame(lang="zh").columns)[0] == "模型"
    # a clicked cell -> the model of its row in the table as filtered
    assert mt.row_model("chinese 7b", [0, 2], "instruct") == table.iloc[0, 0]
    assert mt.row_model("", [0, 0], "qwen3-4b") == "qwen3-4b" and mt.row_model("", [999, 0]) == ""


def test_the_app_builds_with_the_model_tab():
    from studio.ui.app import available_tabs, build_app

    assert mt in available_tabs()
    demo = build_app()
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"model-name", "model-verdict", "model-plot", "model-use", "model-rec-0"} <= ids
