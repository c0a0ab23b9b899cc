"""One message catalog: every language has every id, the Chinese is Chinese, every id the code names exists,
no sentence is written inline in the code, and a third language is one file."""

import ast
import re
import shutil
from pathlib import Path

import pytest
import yaml

from studio import messages

ROOT = Path(__file__).resolve().parent.parent / "studio"
PLACEHOLDER = re.compile(r"\{(\w+)[^}]*\}")
# Values that may be the same in every language: names and units (checked with placeholders taken out).
SAME_NAMES = {"LoRA alpha", "LoRA dropout", "LoRA", "QLoRA", "GiB", "MiB", "GPU", "CPU", "BF16", "FP16", "FP32", "INT8",
              "INT4", "ROUGE-L", "BLEU", "AdamW", "SGD", "A", "B", "DPO", "SFT", "CPT", "English", "Hugging Face Hub", "GGUF", "JSONL"}


def _same_everywhere(value: str) -> bool:
    bare = PLACEHOLDER.sub("", value).strip(" :·,/()-")
    return not re.search(r"[A-Za-z]", bare) or bare in SAME_NAMES or re.fullmatch(r"[\w.-]+\.[a-z]{2,5}", bare) is not None


def _ids_in(lang: str) -> dict:
    return messages.catalog(lang)


def test_every_language_has_every_id_and_no_other():
    en = _ids_in("en")
    assert len(en) > 500
    for lang in messages.languages():
        table = _ids_in(lang)
        assert sorted(set(en) - set(table)) == [], f"{lang}.yaml lacks these ids"
        assert sorted(set(table) - set(en)) == [], f"{lang}.yaml has ids that en.yaml does not"


def test_no_id_is_written_twice():
    for path in messages.LOCALES.glob("*.yaml"):
        keys = [line.split(":", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()
                if line and not line.startswith((" ", "#"))]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        assert dupes == [], f"{path.name}: ids written twice"


def test_placeholders_agree_across_languages():
    en = _ids_in("en")
    for lang in messages.languages():
        for key, value in _ids_in(lang).items():
            assert set(PLACEHOLDER.findall(value)) == set(PLACEHOLDER.findall(en[key])), f"{lang}: {key}"


def test_chinese_is_not_the_english_left_untranslated():
    en, zh = _ids_in("en"), _ids_in("zh")
    same = [k for k in en if zh[k] == en[k] and not _same_everywhere(en[k])]
    assert same == [], f"Chinese values identical to English: {same}"
    for key, value in zh.items():
        words = re.findall(r"[A-Za-z]{2,}", PLACEHOLDER.sub("", en[key]))
        if len(words) >= 3 and not _same_everywhere(en[key]):  # a sentence, not a name
            assert re.search(r"[\u4e00-\u9fff]", value), f"'{key}' has no Chinese: {value!r}"


def test_no_sentence_is_written_in_the_code():
    """Chinese lives in the catalog only: a CJK character in a .py file is a sentence that bypassed it."""
    cjk = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
    offenders = {}
    for path in ROOT.rglob("*.py"):
        n = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if cjk.search(line))
        if n:
            offenders[str(path.relative_to(ROOT))] = n
    assert offenders == {}, f"lines with Chinese text outside studio/locales: {offenders}"


_CALLS = {"t", "text", "say", "Msg", "StudioError", "ConfigError", "bilingual", "field_help"}


def _literal_ids():
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            first = node.args[0]
            if name in _CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                if name == "text" and first.value in messages.languages():
                    continue  # message.text("en"): a language, not an id
                yield path.relative_to(ROOT), node.lineno, first.value


def test_every_id_the_code_names_is_in_the_catalog():
    en = _ids_in("en")
    missing = [f"{p}:{line} {key}" for p, line, key in _literal_ids()
               if key not in en and re.fullmatch(r"[a-z_0-9]+(\.[A-Za-z_0-9]+)+", key)]
    assert missing == []
    inline = [f"{p}:{line} {key[:40]!r}" for p, line, key in _literal_ids()
              if key not in en and not re.fullmatch(r"[a-z_0-9]+(\.[A-Za-z_0-9]+)+\.?", key)]
    assert inline == [], "messages written inline instead of by id"


def test_a_message_travels_as_data_and_reads_in_either_language():
    from studio.errors import StudioError

    e = StudioError("error.disk_full_at", where="/tmp/x")
    d = e.message.to_dict()
    assert d == {"id": "error.disk_full_at", "params": {"where": "/tmp/x"}}
    back = messages.Msg.from_dict(d)
    assert "/tmp/x" in back.text("en") and "/tmp/x" in back.text("zh") and back.text("en") != back.text("zh")
    assert messages.text_of(d, "zh") == back.text("zh")
    assert messages.say("list.separator", "zh") != messages.say("list.separator", "en")
    assert messages.localize(["a", "b"], "zh") == "a、b"


@pytest.fixture
def pseudo(tmp_path, monkeypatch):
    """A third language built from the English file: the same ids, every text marked."""
    for p in messages.LOCALES.glob("*.yaml"):
        shutil.copy(p, tmp_path / p.name)
    en = yaml.safe_load((messages.LOCALES / "en.yaml").read_text(encoding="utf-8"))
    xx = {k: ("Pseudo" if k == "language.name" else f"⟦{v}⟧") for k, v in en.items()}
    (tmp_path / "xx.yaml").write_text(yaml.safe_dump(xx, allow_unicode=True, width=10**9), encoding="utf-8")
    monkeypatch.setattr(messages, "LOCALES", tmp_path)
    messages.catalog.cache_clear()
    messages.languages.cache_clear()
    yield "xx"
    messages.catalog.cache_clear()
    messages.languages.cache_clear()


def test_a_third_language_is_one_file(pseudo):
    from studio.errors import StudioError

    assert pseudo in messages.languages()
    assert messages.normalize_lang("xx-YY") == "xx"
    assert messages.say("error.disk_full", "xx").startswith("⟦")
    assert StudioError("error.disk_full_at", where="/d").text("xx") == "⟦" + messages.say("error.disk_full_at", "en", where="/d") + "⟧"
    from studio.ui import i18n, language

    assert pseudo in language.choices_values()
    assert messages.catalog("xx")["app.title"].startswith("⟦")
    assert i18n.lang_of(None) == "en"
