"""Every message the engine gives a person exists in English and in Chinese.

An AST scan of studio/: each StudioError (or subclass) built anywhere gets a Chinese sentence too; then the
returned sentences (config problems, job errors) and one tab handler per kind of message, in Chinese.
"""

import ast
import json
import re
from pathlib import Path

import pytest

from studio.config import ConfigError, RunConfig
from studio.errors import Sentence, StudioError, error_text, joined

STUDIO = Path(__file__).resolve().parents[1] / "studio"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
ZH_KEYWORDS = ("zh", "message_zh")
# "path:line-free source of the call" for a call that may stay one-language (a forwarded error, say).
# Keep this empty: restructure instead (pass e.en, e.zh).
ALLOWED: set[str] = set()


def _modules():
    for path in sorted(STUDIO.rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        yield path, src, ast.parse(src, str(path))


def _error_classes() -> set[str]:
    """StudioError and every class in studio/ that derives from it (ConfigError, DeviceBusy, ...)."""
    names = {"StudioError"}
    classes = [node for _, _, tree in _modules() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for c in classes:
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", None) for b in c.bases}
            if c.name not in names and bases & names:
                names.add(c.name)
                grew = True
    return names


def _calls():
    names = _error_classes()
    for path, src, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if name in names:
                    yield path, src, node


def _literal_text(node) -> str | None:
    """The text of a string literal or f-string (its literal parts), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [_literal_text(node.left), _literal_text(node.right)]
        return "".join(p for p in parts if p is not None) if any(p is not None for p in parts) else None
    return None


def _text_call_lang(node) -> str | None:
    """For `text("key", "zh", ...)` (the UI's string table), the language literal; else None."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "text"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
        return node.args[1].value
    return None


def test_the_scan_finds_the_error_classes_and_their_calls():
    assert {"StudioError", "ConfigError", "DeviceBusy"} <= _error_classes()
    assert sum(1 for _ in _calls()) > 100  # the scan really walks the package


def test_every_studio_error_has_a_chinese_sentence():
    missing, not_chinese, wrong_lang = [], [], []
    for path, src, call in _calls():
        where = f"{path.relative_to(STUDIO.parent)}:{call.lineno}"
        key = f"{path.relative_to(STUDIO.parent)}:{ast.get_source_segment(src, call)}"
        zh_kw = [k.value for k in call.keywords if k.arg in ZH_KEYWORDS]
        if len(call.args) >= 2:
            en, zh = call.args[0], call.args[1]
        elif zh_kw and call.args:
            en, zh = call.args[0], zh_kw[0]
        else:
            if key not in ALLOWED:
                missing.append(where)
            continue
        text = _literal_text(zh)
        if text is not None and not CJK.search(text):
            not_chinese.append(where)
        if _text_call_lang(en) not in (None, "en") or _text_call_lang(zh) not in (None, "zh"):
            wrong_lang.append(where)
    assert not missing, "StudioError(...) without its Chinese sentence at: " + ", ".join(missing)
    assert not not_chinese, "The Chinese argument has no Chinese in it at: " + ", ".join(not_chinese)
    assert not wrong_lang, "text(key, lang) in the wrong language at: " + ", ".join(wrong_lang)


def test_the_allow_list_names_only_calls_that_exist():
    keys = {f"{p.relative_to(STUDIO.parent)}:{ast.get_source_segment(s, c)}" for p, s, c in _calls()}
    assert ALLOWED <= keys


def test_studio_error_and_sentence_carry_both_languages():
    e = StudioError("No data.", "没有数据。")
    assert str(e) == "No data." and e.text("zh") == "没有数据。" and error_text(e, "zh") == "没有数据。"
    assert error_text(ValueError("plain"), "zh") == "plain"
    s = Sentence("Hi.", "你好。")
    assert s == "Hi." and s.zh == "你好。" and Sentence("Hi.", "你好。", "zh") == "你好。"
    assert joined([s, s]) == "Hi. Hi." and joined([s, s], "zh") == "你好。你好。"


# ---- returned sentences ---------------------------------------------------------------------------

def _qlora_config(tmp_path) -> RunConfig:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "hello"}]}) + "\n")
    cfg = RunConfig()
    cfg.data.train_file = str(data)
    cfg.method.method = "qlora"
    return cfg


def test_validate_speaks_chinese_for_qlora_on_a_cpu(tmp_path):
    cfg = _qlora_config(tmp_path)
    cpu = {"cuda": False, "mps": False}
    en = cfg.validate(cpu)
    zh = cfg.validate(cpu, lang="zh")
    assert en == ["QLoRA needs an NVIDIA GPU; this machine has none. Choose LoRA."]  # unchanged for callers
    assert len(zh) == 1 and "QLoRA" in zh[0] and "NVIDIA GPU" in zh[0] and CJK.search(zh[0])
    assert zh[0].en == en[0] and en[0].zh == zh[0]
    with pytest.raises(ConfigError) as caught:
        cfg.check(cpu)
    assert str(caught.value) == en[0] and caught.value.text("zh") == zh[0]


def test_every_validate_problem_has_chinese(tmp_path):
    cfg = RunConfig()
    t, m, d = cfg.training, cfg.method, cfg.data
    t.stage, m.method, t.device, t.precision, t.scheduler = "x", "y", "z", "w", "v"
    t.gradient_checkpointing, t.learning_rate, t.batch_size, t.grad_accum = "maybe", 0, 0, 0
    t.max_length, t.epochs, t.max_steps, d.eval_share = 1, 0, -1, 2
    d.train_file, d.eval_file = str(tmp_path / "none.jsonl"), str(tmp_path / "none2.jsonl")
    problems = cfg.validate({"cuda": False}, lang="zh")
    assert len(problems) >= 15
    for p in problems:
        assert CJK.search(p) and p == p.zh and p.en != p.zh


def test_a_failed_job_keeps_its_error_in_both_languages(tmp_path):
    from studio.engine.job import Job, _explain

    job = Job(RunConfig())
    en, zh = _explain(StudioError("Broken.", "坏了。"), job)
    assert (en, zh) == ("Broken.", "坏了。")
    en, zh = _explain(MemoryError(), job)
    assert en.startswith("Out of memory") and zh.startswith("内存不足")
    en, zh = _explain(RuntimeError("boom"), job)
    assert "unexpected error" in en and "意外错误" in zh and "boom" in zh
    snap = job.snapshot()
    assert "error_zh" in snap and "log_zh" in snap
    job._say("Training completed.", "训练完成。")
    assert job.snapshot()["log"][-1].endswith("Training completed.")
    assert job.snapshot()["log_zh"][-1].endswith("训练完成。")


def test_start_refuses_in_both_languages():
    from studio.engine.job import Job

    with pytest.raises(StudioError) as caught:
        Job(RunConfig()).start()  # no training data
    assert "No training data" in str(caught.value) and "没有训练数据" in caught.value.text("zh")


# ---- the tabs show the reader's language ------------------------------------------------------------

def test_train_tab_shows_engine_errors_in_chinese(tmp_path):
    from studio.ui import train_tab as tt

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert tt.check_data_file(str(empty), "sft", "en")["message"] == "empty.jsonl is empty."
    assert tt.check_data_file(str(empty), "sft", "zh")["message"] == "empty.jsonl 是空文件。"

    settings, base = tt.settings_from_config(RunConfig()), RunConfig().to_dict()  # no data: start refuses
    assert "No training data" in tt.start_run(settings, base, "en")["status"]
    assert "没有训练数据" in tt.start_run(settings, base, "zh")["status"]

    snap = {"state": "failed", "step": 1, "total_steps": 2, "error": "Broken.", "error_zh": "坏了。",
            "log": ["10:00:00 Failed: Broken."], "log_zh": ["10:00:00 失败：坏了。"], "metrics": []}
    assert "坏了。" in tt.progress_html(snap, "zh") and "Broken." in tt.progress_html(snap, "en")
    assert tt.live_view(snap, None, "zh")["log"] == "10:00:00 失败：坏了。"
    old = dict(snap, error_zh=None, log_zh=None)  # a summary.json written before error_zh existed
    assert "Broken." in tt.progress_html(old, "zh") and tt.live_view(old, None, "zh")["log"].endswith("Broken.")


def test_model_tab_shows_engine_errors_in_chinese():
    from studio.ui import model_tab as mt

    no_gpu = {"cuda": False, "mps": False, "gpus": [], "cpu_cores": 2, "ram_bytes": 16 * 2**30, "cpu_bf16": False}
    res = mt.evaluate({"target": "lots"}, "zh", hw=no_gpu)
    assert not res["ok"] and "不是内存大小" in res["error"] and res["verdict_md"].endswith(res["error"])
