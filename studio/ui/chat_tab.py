"""The Chat tab: talk with a run's model, several turns, streamed; a system prompt, temperature and length;
a switch between the fine-tuned model and the base; stop, clear, and keep a good conversation as a new
training row (offered to the Train tab, and as a download).

Layout only. The work is in studio.evaluate.chat (plain functions the tests call too), which returns dicts
keyed by names ("chat", "status", ...); `build(ctx)` maps those names to components. The model is the one
the Compare tab loads: one copy in memory for both.
"""

from __future__ import annotations

import secrets

import gradio as gr

from studio.evaluate.chat import describe, keep, reply, request_stop, use_kept
from studio.evaluate.runs import default_run, followed_run, run_choices
from studio.ui.i18n import lang_of, t
from studio.ui.workspace import session_of

TITLE = t("chat.tab")


def _servable(path: str | None, session: str) -> str | None:
    if not path:
        return None
    from studio.ui.data_tab import servable

    return servable(path, session)


def build(ctx) -> dict:
    chat_id = gr.State("")  # a random id per page: what Stop names (set on load)
    kept = gr.State(None)  # {"train_file", "rows"} once a conversation was kept

    run_dd = gr.Dropdown(choices=run_choices(), value=None, label=t("chat.run"), elem_id="chat-run")
    run_md = gr.Markdown(elem_id="chat-run-info")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot([], label=t("chat.conversation"), height=460, buttons=["copy"],
                                 feedback_options=None, elem_id="chat-chatbot")
            message_box = gr.Textbox(label=t("chat.message"), placeholder=t("chat.message.placeholder"), lines=1,
                                     max_lines=8, elem_id="chat-input")
            with gr.Row():
                send_btn = gr.Button(t("chat.send"), variant="primary", elem_id="chat-send")
                stop_btn = gr.Button(t("chat.stop"), variant="stop", elem_id="chat-stop")
                clear_btn = gr.Button(t("chat.clear"), elem_id="chat-clear")
            status_md = gr.Markdown(elem_id="chat-status")
        with gr.Column(scale=2):
            which = gr.Radio([(t("chat.model.finetuned"), "finetuned"), (t("chat.model.base"), "base")],
                             value="finetuned", label=t("chat.model"), info=t("chat.model.info"), elem_id="chat-model")
            system = gr.Textbox(label=t("chat.system"), placeholder=t("chat.system.placeholder"), lines=3,
                                elem_id="chat-system")
            temperature = gr.Slider(0, 1.5, 0.7, step=0.05, label=t("compare.temperature"),
                                    info=t("chat.temperature.info"), elem_id="chat-temperature")
            max_tokens = gr.Slider(16, 2048, 256, step=16, label=t("compare.max_new_tokens"),
                                   info=t("compare.max_new_tokens.info"), elem_id="chat-max-tokens")
            gr.Markdown(t("chat.keep.title"))
            gr.Markdown(t("chat.keep.info"))
            with gr.Row():
                keep_btn = gr.Button(t("chat.keep"), elem_id="chat-keep")
                use_btn = gr.Button(t("chat.use"), interactive=False, elem_id="chat-use")
            keep_md = gr.Markdown(elem_id="chat-keep-status")
            kept_file = gr.File(label=t("chat.kept_file"), interactive=False, visible=False, elem_id="chat-kept-file")

    names = {"chat": chatbot, "input": message_box, "status": status_md, "data": ctx.data}

    def ui(values: dict) -> dict:
        return {names[k]: v for k, v in values.items() if k in names}

    # ---- the run
    def on_load(current, request: gr.Request):
        value = default_run(current)
        return {chat_id: secrets.token_hex(16), run_dd: gr.Dropdown(choices=run_choices(), value=value),
                run_md: describe(value, lang_of(request))}

    gr.on(None, on_load, [ctx.run], [chat_id, run_dd, run_md], show_progress="hidden")

    def on_run(value, cid, request: gr.Request):
        request_stop(cid)  # another model: the conversation starts again
        return {run_md: describe(value, lang_of(request)), chatbot: [], status_md: ""}

    run_dd.input(on_run, [run_dd, chat_id], [run_md, chatbot, status_md], show_progress="hidden")

    def on_ctx_run(current, value, request: gr.Request):
        """The Train tab opened or finished a run: follow it here once it has a model."""
        choices, want, changed = followed_run(current, value)
        out = {run_dd: gr.Dropdown(choices=choices, value=want)}
        if changed:
            out.update({run_md: describe(want, lang_of(request)), chatbot: []})
        return out

    ctx.run.change(on_ctx_run, [ctx.run, run_dd], [run_dd, run_md, chatbot], show_progress="hidden")

    def on_show(value, request: gr.Request):
        """Opening the tab: new runs in the list, and whether training holds the device now."""
        choices = run_choices()
        value = value if any(v == value for _, v in choices) else (choices[0][1] if choices else None)
        return {run_dd: gr.Dropdown(choices=choices, value=value), run_md: describe(value, lang_of(request))}

    if ctx.tab is not None:
        ctx.tab.select(on_show, run_dd, [run_dd, run_md], show_progress="hidden")

    # ---- talking
    def on_send(value, history, text_, sys_, model, temp, tokens, cid, request: gr.Request):
        for update in reply(value, history, text_, sys_, model, temp, tokens, chat_id=cid, lang=lang_of(request)):
            yield ui(update)

    gr.on([send_btn.click, message_box.submit], on_send,
          [run_dd, chatbot, message_box, system, which, temperature, max_tokens, chat_id],
          [chatbot, message_box, status_md], show_progress="hidden", concurrency_limit=8, concurrency_id="chat",
          api_name="chat_send")
    # Stop and Clear are not queued behind answers: they must act while one streams.
    stop_btn.click(request_stop, chat_id, None, queue=False, show_progress="hidden")

    def on_clear(cid):
        request_stop(cid)
        return {chatbot: [], status_md: "", message_box: ""}

    clear_btn.click(on_clear, chat_id, [chatbot, status_md, message_box], queue=False, show_progress="hidden")

    # ---- keeping a good conversation
    def on_keep(history, sys_, request: gr.Request):
        session = session_of(request)
        out = keep(history, sys_, session, lang_of(request))
        path = (out["kept"] or {}).get("train_file")
        return {keep_md: out["status"], kept: out["kept"], use_btn: gr.Button(interactive=bool(out["kept"])),
                kept_file: gr.File(value=_servable(path, session), visible=bool(path))}

    keep_btn.click(on_keep, [chatbot, system], [keep_md, kept, use_btn, kept_file], show_progress="hidden")

    def on_use(value, request: gr.Request):
        out = use_kept(value, lang_of(request))
        return {keep_md: out["status"], **({ctx.data: out["data"]} if "data" in out else {})}

    use_btn.click(on_use, kept, [keep_md, ctx.data], show_progress="hidden")

    return {"run": run_dd, "chatbot": chatbot, "input": message_box, "send": send_btn, "stop": stop_btn,
            "clear": clear_btn, "model": which, "status": status_md, "keep": keep_btn, "use": use_btn}
