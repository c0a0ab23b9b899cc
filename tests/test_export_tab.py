"""The Export tab's handlers as plain functions, on the tiny run that tests/test_export.py builds (a random
Llama with hidden size 32 and a LoRA adapter with non-zero weights): no browser, seconds on a CPU."""

import re
import zipfile
from pathlib import Path

import pytest

from studio.ui import export_tab as et

TOKEN = "hf_exportTABtoken0123456789abcdefQRS"
CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from test_export import make_base, make_run

    root = tmp_path_factory.mktemp("export-tab")
    return make_run(root, make_base(root / "base")), root


@pytest.fixture(autouse=True)
def runs_folder(tiny, monkeypatch, tmp_path):
    run, root = tiny
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(root / "runs"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no token saved by `hf auth login` either
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))


def test_the_run_is_listed_and_described(tiny):
    run, _ = tiny
    assert et.run_choices() == [(run.name, str(run))]
    assert et.default_run(None) == str(run) == et.default_run({"run_dir": str(run)})
    d = et.describe_run(str(run))
    assert run.name in d["run_md"] and d["adapter_ok"] and d["gguf_ok"], d
    assert d["card"].startswith("```yaml\nlibrary_name: peft") and "# tiny" in d["card"] and "LoRA rank" in d["card"]
    # a folder the app does not list is refused with a sentence
    assert et.describe_run("/etc")["run_md"].startswith("⚠️")


def test_export_adapter_zip_merged_and_card(tiny, tmp_path):
    run, root = tiny
    seen = []
    out = et.export(str(run), adapter=True, merge=True, card=True, progress=lambda f, m: seen.append((f, m)),
                    is_busy=lambda: False, out_dir=tmp_path / "out")
    assert "⚠️" not in out["status"], out["status"]
    z = Path(out["zip"])
    assert z.is_file()
    with zipfile.ZipFile(z) as zf:
        assert f"{run.name}-adapter/adapter_model.safetensors" in zf.namelist()
    merged = tmp_path / "out" / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert str(merged) in out["status"]
    # the card names the base (a local folder here: its name) and the data
    assert root.joinpath("base").name in out["card"] and "Training rows" in out["card"]
    assert {Path(f).name for f in out["files"]} >= {"config.yaml", "accelerate-fsdp.yaml", "COMMANDS.md"}
    assert seen[-1][0] == 1.0 and any("CPU" in m for _, m in seen)


def test_progress_is_shown_in_the_readers_language(tiny, tmp_path):
    run, _ = tiny
    seen = []
    out = et.export(str(run), adapter=True, merge=False, card=True, lang="zh", progress=lambda f, m: seen.append(m),
                    is_busy=lambda: False, out_dir=tmp_path / "out")
    assert out["zip"], out["status"]
    assert "导出完成" in seen and "适配器已导出" in seen, seen
    assert all(type(m) is str and CJK.search(m) for m in seen), seen
    seen.clear()
    et.export(str(run), adapter=True, merge=False, card=False, lang="en", progress=lambda f, m: seen.append(m),
              is_busy=lambda: False, out_dir=tmp_path / "out-en")
    assert "Export finished" in seen and not any(CJK.search(m) for m in seen), seen


def test_merging_is_refused_while_training(tiny, tmp_path):
    run, _ = tiny
    out = et.export(str(run), adapter=True, merge=True, card=False, is_busy=lambda: True, out_dir=tmp_path / "o")
    assert "training job is running" in out["status"]
    assert out["zip"] and not (tmp_path / "o" / "merged").exists()
    assert "training" in et.push(str(run), "me/x", token=TOKEN, what="merged", is_busy=lambda: True)["hub"]
    assert et.export(str(run), False, False, False, False)["status"] == et.text("export.nothing")


def test_rerun_commands_for_four_gpus_with_fsdp(tiny):
    run, _ = tiny
    r = et.rerun_view(str(run), 4, "fsdp")
    assert r["launch_cmd"] == ("accelerate launch --config_file rerun/accelerate-fsdp.yaml --num_processes 4 "
                               "-m studio train rerun/config.yaml")
    assert r["train_cmd"] == "studio train rerun/config.yaml"
    assert "lora_rank: 4" in r["yaml"] and "FSDP" in r["backend_help"]
    assert Path(r["accelerate_file"]).name == "accelerate-fsdp.yaml"
    assert "distributed_type: FSDP" in Path(r["accelerate_file"]).read_text()
    assert "DeepSpeed" in et.rerun_view(str(run), 2, "deepspeed", "en")["backend_help"]
    assert et.rerun_view(str(run), 1, "ddp")["launch_cmd"] == r["train_cmd"]


def test_push_without_a_token_is_a_sentence(tiny):
    run, _ = tiny
    out = et.push(str(run), "me/tiny", token="")
    assert out["hub"] == "⚠️ " + et.text("export.no_token")
    assert "令牌" in et.push(str(run), "me/tiny", token="", lang="zh")["hub"]
    assert et.push(str(run), "", token=TOKEN)["hub"] == "⚠️ " + et.text("export.no_repo")
    # on a public Space the owner's HF_TOKEN must not push for a visitor
    assert "your own" in et.push(str(run), "me/tiny", token="", space=True)["hub"]


def test_token_is_never_returned_or_written(tiny, tmp_path, monkeypatch, capsys, caplog):
    run, root = tiny
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no network
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    out = et.push(str(run), "me/tiny", private=True, token=TOKEN, out_dir=tmp_path / "out")
    assert out["hub"].startswith("⚠️") and "\n" not in out["hub"], out
    assert "offline" in out["hub"] or "reach" in out["hub"], out
    assert TOKEN not in repr(out)
    for folder in (tmp_path, root):
        for f in folder.rglob("*"):
            if f.is_file():
                assert TOKEN.encode() not in f.read_bytes(), f"the token was written to {f}"
    printed = capsys.readouterr()
    assert TOKEN not in printed.out + printed.err + caplog.text


def test_the_whole_app_builds():
    from studio.ui.app import build_app

    demo = build_app()
    assert demo is not None
