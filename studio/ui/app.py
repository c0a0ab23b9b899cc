"""The app builder: a header, then one tab per step of the journey, each built by its own module."""

from __future__ import annotations

import importlib

import gradio as gr

from studio import workspace
from studio.ui import language
from studio.ui.context import Context
from studio.ui.guard import guard_handlers
from studio.ui.i18n import lang_of, t, translations
from studio.ui.live import LiveKeyMiddleware
from studio.ui.priority import YieldToTraining
from studio.ui.workspace import session_of


# The journey, in order. A module that is not there yet is left out: no empty placeholder tabs.
TABS = ("data_tab", "model_tab", "train_tab", "compare_tab", "chat_tab", "export_tab")

CSS = """
.studio-header h1 { margin-bottom: 0; }
.verdict-fits { color: #15803d; font-weight: 600; }
.verdict-tight { color: #b45309; font-weight: 600; }
.verdict-no { color: #b91c1c; font-weight: 600; }
"""


def available_tabs() -> list:
    mods = []
    for name in TABS:
        try:
            mods.append(importlib.import_module(f"studio.ui.{name}"))
        except ModuleNotFoundError as e:
            if e.name != f"studio.ui.{name}":
                raise
    return mods


def build_app(is_space: bool = False) -> gr.Blocks:
    tabs = available_tabs()
    with gr.Blocks(title="Fine-tuning Studio") as demo:
        with gr.Row(elem_classes="studio-header"):
            with gr.Column(scale=5):
                gr.Markdown(t("app.heading"))
                gr.Markdown(t("app.tagline"))
            lang = gr.Radio(language.choices(), value="auto", label=t("app.language"), scale=1, min_width=220,
                            elem_id="studio-language")
        ctx = Context.create(is_space=is_space)
        with gr.Tabs():
            for mod in tabs:
                with gr.Tab(mod.TITLE, id=mod.__name__.rsplit(".", 1)[-1]) as ctx.tab:
                    mod.build(ctx)
        # The switch shows the choice stored in the cookie; choosing reloads the page in that language.
        def chosen(request: gr.Request) -> str:
            return language.cookie_choice(request.headers.get("cookie", ""))

        demo.load(chosen, None, lang, show_progress="hidden")
        # The data chosen for training (the Data tab's or the Compare tab's) is the browser's too.
        ctx.on_restore(lambda ws, lang, session: {ctx.data: ws.get("data") or {}}, [ctx.data])

        def remember_data(value, request: gr.Request):
            workspace.save(session_of(request), data=value or None)

        ctx.data.change(remember_data, ctx.data, None, show_progress="hidden")
        restored = [c for _, outputs in ctx.restores for c in outputs]

        def restore(request: gr.Request):
            session, lang = session_of(request), lang_of(request)
            ws = workspace.load(session)
            out: dict = {}
            for fn, _ in ctx.restores:
                out.update(fn(ws, lang, session))
            return out

        demo.load(restore, None, restored, show_progress="hidden")
        lang.input(None, lang, None, js=language.SWITCH_JS)
    return guard_handlers(demo)


def launch_kwargs() -> dict:
    from starlette.middleware import Middleware

    return dict(i18n=translations(), css=CSS, theme=gr.themes.Soft(),
                app_kwargs={"middleware": [Middleware(language.LanguageMiddleware), Middleware(YieldToTraining),
                                           Middleware(LiveKeyMiddleware)]})
