"""The page's text, from the message catalog (studio/messages.py, studio/locales/<lang>.yaml).

Labels are `t("id")`: the browser translates them (gr.I18n follows the browser's language, or the one
chosen with the switch in the page's header: see studio/ui/language.py). Text a handler writes at run
time uses `text("id", lang, **params)` with `lang_of(request)`; a message the engine returned (a Msg or a
StudioError) is shown with `.text(lang)`.
"""

from __future__ import annotations

import gradio as gr

from studio import messages

LANGS = messages.languages()


def t(key: str):
    """A label the browser shows in its language."""
    if not messages.has(key):
        raise KeyError(f"message '{key}' is not in studio/locales/en.yaml")
    return gr.I18n()(key)


def text(key: str, lang: str = "en", **fmt) -> str:
    return messages.say(key, lang, **fmt)


def bilingual(key: str, **fmt) -> str:
    """Every language at once, for places the browser's translation does not reach (gr.Info toasts)."""
    return " / ".join(messages.say(key, lang, **fmt) for lang in LANGS)


def lang_of(request: gr.Request | None) -> str:
    """The language chosen with the page's switch (a cookie), else the browser's first language when the
    catalog has it (Accept-Language), else English."""
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
    return messages.normalize_lang(header.split(",")[0].strip())


def translations() -> gr.I18n:
    return gr.I18n(**{lang: messages.catalog(lang) for lang in LANGS})
