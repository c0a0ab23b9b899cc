"""Every key the tabs use is in the catalog (tests/test_messages.py checks the catalog itself)."""

import re
from pathlib import Path

UI = Path(__file__).resolve().parent.parent / "studio" / "ui"


def test_every_key_the_tabs_build_is_in_the_catalog():
    from studio.messages import catalog

    used = set()
    for path in UI.glob("*.py"):
        used |= set(re.findall(r"""\b(?:t|text|bilingual)\(\s*f?["']([a-z_]+\.[A-Za-z0-9_.]+)["']""", path.read_text()))
    missing = sorted(k for k in used if k not in catalog("en") and not k.endswith("."))  # "x." + name: built keys
    assert not missing, f"UI strings used but not in studio/locales/en.yaml: {missing}"


def test_nothing_outside_the_ui_imports_gradio():
    root = UI.parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "ui" not in p.relative_to(root).parts[:1]
                 and re.search(r"^\s*(import gradio|from gradio)", p.read_text(), re.M)]
    assert offenders == []
