"""English and Chinese strings for the UI.

Labels are `t("key")`: the browser translates them (gr.I18n follows the browser's language, or the one
chosen with the switch in the page's header: see studio/ui/language.py). Text a handler writes at run time uses `text("key", lang)` with
`lang_of(request)`. Each tab module registers its own strings with `register({...})`.
"""

from __future__ import annotations

import gradio as gr

STRINGS: dict[str, tuple[str, str]] = {}
LANGS = ("en", "zh")


def register(strings: dict[str, tuple[str, str]]) -> None:
    for key, pair in strings.items():
        if key in STRINGS and STRINGS[key] != pair:
            raise ValueError(f"UI string '{key}' registered twice with different texts")
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(s, str) and s for s in pair)):
            raise ValueError(f"UI string '{key}' needs an English and a Chinese text")
        STRINGS[key] = pair


def t(key: str):
    """A label the browser shows in its language."""
    if key not in STRINGS:
        raise KeyError(f"UI string '{key}' is not registered")
    return gr.I18n()(key)


def text(key: str, lang: str = "en", **fmt) -> str:
    en, zh = STRINGS[key]
    s = zh if lang == "zh" else en
    return s.format(**fmt) if fmt else s


def bilingual(key: str, **fmt) -> str:
    """Both languages at once, for places the browser's translation does not reach (gr.Info toasts)."""
    return f"{text(key, 'en', **fmt)} / {text(key, 'zh', **fmt)}"


def lang_of(request: gr.Request | None) -> str:
    """The language chosen with the page's switch (a cookie), else zh when the browser prefers Chinese
    (Accept-Language), else en."""
    from studio.ui.language import cookie_choice

    if request is None:
        return "en"
    try:
        chosen = cookie_choice(request.headers.get("cookie", "") or "")
        header = request.headers.get("accept-language", "") or ""
    except Exception:
        return "en"
    if chosen != "auto":
        return chosen
    first = header.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def translations() -> gr.I18n:
    return gr.I18n(en={k: v[0] for k, v in STRINGS.items()}, zh={k: v[1] for k, v in STRINGS.items()})
