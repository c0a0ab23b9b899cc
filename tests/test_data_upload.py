"""The upload cap has one source (`studio.data.read.upload_limit`): Gradio's max_file_size at launch, the
reader's check and the Data tab's hint all follow STUDIO_MAX_UPLOAD_MB and a public Space's safe mode."""

import json

import pytest

from studio.data import session as ds
from studio.ui import data_tab as dt
from studio.ui.launch import server_kwargs


@pytest.fixture(autouse=True)
def plain_machine(tmp_path, monkeypatch):
    for var in ("SPACE_ID", "STUDIO_SAFE_MODE", "STUDIO_MAX_UPLOAD_MB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))


def test_launch_cap_follows_the_setting_and_the_space(monkeypatch):
    assert server_kwargs()["max_file_size"] == 200 * 2**20
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "1.5")
    assert server_kwargs()["max_file_size"] == int(1.5 * 2**20)
    monkeypatch.delenv("STUDIO_MAX_UPLOAD_MB")
    monkeypatch.setenv("SPACE_ID", "someone/studio")  # a public Space: safe mode's 20 MB
    kw = server_kwargs([("ann", "pw")])
    assert kw["max_file_size"] == 20 * 2**20 and kw["allowed_paths"] == [] and kw["auth"] == [("ann", "pw")]


def test_gradio_accepts_the_cap():
    from gradio.utils import _parse_file_size

    assert _parse_file_size(server_kwargs()["max_file_size"]) == 200 * 2**20


def test_the_tab_hint_says_the_same_cap(monkeypatch):
    assert ds.upload_hint("en").endswith("up to 200 MB.")
    monkeypatch.setenv("SPACE_ID", "someone/studio")
    assert ds.upload_hint("en").endswith("up to 20 MB.") and "最大 20 MB" in ds.upload_hint("zh")
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "5")
    assert ds.upload_hint("en").endswith("up to 5 MB.")


def test_the_tab_refuses_a_file_over_the_cap_with_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "0.001")  # about 1 KB
    src = tmp_path / "faq.jsonl"
    src.write_text("".join(json.dumps({"question": f"Question {i}?", "answer": f"Answer number {i}."}) + "\n"
                           for i in range(60)), encoding="utf-8")
    out = ds.load_data(str(src), session="s")
    assert not out["ok"] and "over the 1 KB upload limit" in out["error"] and "\n" not in out["error"]
    zh = ds.load_data(str(src), session="s", lang="zh")
    assert "超过了 1 KB 的上传上限" in zh["error"]
    assert not (tmp_path / "home" / "uploads" / "s").exists()  # nothing copied
