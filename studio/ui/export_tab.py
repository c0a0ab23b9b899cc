"""The Export tab: a finished run as a LoRA adapter (folder and zip), a merged model, a model card, an
optional GGUF file, a push to the Hugging Face Hub, and the exact config and commands to re-run it on one
GPU or many.

Layout only: what each control shows comes from studio.export.page (plain functions over plain values that
return dicts keyed by names: "status", "zip", "card", ...), so the tests drive the tab without a browser.

Hub tokens: the password box's value reaches `push` as an argument for one click, goes to the engine,
and is never returned, kept in a gr.State, logged or written.
"""

from __future__ import annotations

from typing import Callable

import gradio as gr

from studio.evaluate.runs import followed_run
from studio.export.page import (DEFAULT_GGUF_TYPES, GGUF_TYPES, checked_run, default_run, describe_run, export, push, rerun_view,
                                run_choices)
from studio.policy import safe_mode
from studio.ui.i18n import lang_of, t, text
from studio.ui.workspace import session_of

__all__ = ["TITLE", "build", "checked_run", "default_run", "describe_run", "export", "push", "rerun_view",
           "run_choices", "text"]

Progress = Callable[[float, str], None]
BACKEND_LABELS = {"fsdp": "FSDP", "deepspeed": "DeepSpeed ZeRO-3", "deepspeed-zero2": "DeepSpeed ZeRO-2", "ddp": "DDP"}


# ---- the page ----------------------------------------------------------------------------------------

TITLE = t("export.tab")


def _gr_progress(progress) -> Progress:
    return lambda fraction, message: progress(fraction, desc=message)


def _servable(path: str | None, session: str = "") -> str | None:
    """A download of this session's own (see data_tab.servable): never a folder another session writes to."""
    if not path:
        return None
    from studio.ui.data_tab import servable

    return servable(path, session)


def build(ctx) -> dict:
    space = safe_mode().enabled
    with gr.Row(equal_height=False):
        run_dd = gr.Dropdown(choices=run_choices(), value=None, label=t("export.run"), scale=8, elem_id="export-run")
    run_md = gr.Markdown(elem_id="export-run-info")

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            gr.Markdown(t("export.what"))
            adapter_cb = gr.Checkbox(True, label=t("export.adapter"), elem_id="export-adapter")
            merge_cb = gr.Checkbox(False, label=t("export.merge"), info=t("export.merge.info"), elem_id="export-merge")
            card_cb = gr.Checkbox(True, label=t("export.card"), elem_id="export-card")
            gguf_cb = gr.Checkbox(False, label=t("export.gguf"), elem_id="export-gguf")
            gguf_types = gr.CheckboxGroup([(g.upper(), g) for g in GGUF_TYPES if g != "f32"],
                                          value=list(DEFAULT_GGUF_TYPES), label=t("export.gguf_types"),
                                          info=t("export.gguf_types.info"), elem_id="export-gguf-types")
            gguf_md = gr.Markdown(elem_id="export-gguf-info")
            export_btn = gr.Button(t("export.go"), variant="primary", elem_id="export-go")
            status_md = gr.Markdown(elem_id="export-status")
            zip_btn = gr.DownloadButton(t("export.zip"), visible=False, elem_id="export-zip")
            files = gr.File(label=t("export.files"), file_count="multiple", interactive=False, visible=False,
                            elem_id="export-files")
        with gr.Column(scale=1):
            gr.Markdown(t("export.hub"))
            repo = gr.Textbox(label=t("export.repo"), placeholder=t("export.repo.placeholder"), elem_id="export-repo")
            private = gr.Checkbox(True, label=t("export.private"), elem_id="export-private")
            push_what = gr.Radio([(t("export.push_what.adapter"), "adapter"), (t("export.push_what.merged"), "merged")],
                                 value="adapter", label=t("export.push_what"), elem_id="export-push-what")
            token = gr.Textbox(label=t("export.token"), type="password",
                               info=t("export.token.info_space" if space else "export.token.info"),
                               elem_id="export-token")
            push_btn = gr.Button(t("export.push"), elem_id="export-push")
            hub_md = gr.Markdown(elem_id="export-hub")

    with gr.Tabs():
        with gr.Tab(t("export.tab.card"), id="export-card-tab"):
            card_md = gr.Markdown(max_height=640, container=True, elem_id="export-card-preview")
        with gr.Tab(t("export.tab.rerun"), id="export-rerun-tab"):
            gr.Markdown(t("export.rerun.intro"))
            yaml_code = gr.Code(language="yaml", label=t("export.yaml"), interactive=False, max_lines=30,
                                elem_id="export-yaml")
            train_cmd = gr.Code(language="shell", label=t("export.train_cmd"), interactive=False, lines=1, elem_id="export-train-cmd")
            with gr.Row(equal_height=False):
                num_gpus = gr.Number(2, label=t("export.num_gpus"), minimum=1, maximum=64, precision=0, scale=1,
                                     elem_id="export-num-gpus")
                backend = gr.Dropdown([(BACKEND_LABELS[b], b) for b in ("fsdp", "deepspeed", "deepspeed-zero2", "ddp")],
                                      value="fsdp", label=t("export.backend"), scale=2, elem_id="export-backend")
                acc_btn = gr.DownloadButton(t("export.accelerate_file"), scale=1, elem_id="export-accelerate")
            backend_md = gr.Markdown(elem_id="export-backend-help")
            launch_cmd = gr.Code(language="shell", label=t("export.launch_cmd"), interactive=False, lines=1,
                                 elem_id="export-launch-cmd")

    def run_updates(value, lang: str) -> dict:
        d = describe_run(value, lang)
        r = rerun_view(value, 2, "fsdp", lang)
        return {run_md: d["run_md"], card_md: d["card"], gguf_md: d["gguf_info"],
                adapter_cb: gr.Checkbox(value=d["adapter_ok"], interactive=d["adapter_ok"]),
                gguf_cb: gr.Checkbox(value=False, interactive=d["gguf_ok"]),
                push_what: gr.Radio(value="adapter" if d["adapter_ok"] else "merged"),
                status_md: "", hub_md: "", zip_btn: gr.DownloadButton(value=None, visible=False),
                files: gr.File(value=None, visible=False), **rerun_updates(r)}

    def rerun_updates(r: dict) -> dict:
        return {yaml_code: r["yaml"], train_cmd: r["train_cmd"], launch_cmd: r["launch_cmd"],
                backend_md: r["backend_help"], acc_btn: _servable(r["accelerate_file"])}

    run_outputs = [run_md, card_md, gguf_md, adapter_cb, gguf_cb, push_what, status_md, hub_md, zip_btn, files,
                   yaml_code, train_cmd, launch_cmd, backend_md, acc_btn]

    def on_load(current, request: gr.Request):
        value = default_run(current)
        return {run_dd: gr.Dropdown(choices=run_choices(), value=value), **run_updates(value, lang_of(request))}

    gr.on(None, on_load, [ctx.run], [run_dd, *run_outputs], show_progress="hidden")

    def on_run(value, request: gr.Request):
        return run_updates(value, lang_of(request))

    run_dd.input(on_run, run_dd, run_outputs, show_progress="hidden")

    def on_ctx_run(current, value, request: gr.Request):
        """The Train tab opened or finished a run: follow it here once it has a model."""
        choices, want, changed = followed_run(current, value)
        out = {run_dd: gr.Dropdown(choices=choices, value=want)}
        if changed:
            out.update(run_updates(want, lang_of(request)))
        return out

    ctx.run.change(on_ctx_run, [ctx.run, run_dd], [run_dd, *run_outputs], show_progress="hidden")

    def on_show(value, request: gr.Request):
        """Opening the tab shows the run as it is now: new runs in the list, and a card that follows the
        checks and votes made since (the exported files and messages stay)."""
        choices = run_choices()
        value = value if any(v == value for _, v in choices) else (choices[0][1] if choices else None)
        d = describe_run(value, lang_of(request))
        return {run_dd: gr.Dropdown(choices=choices, value=value), run_md: d["run_md"], card_md: d["card"]}

    if ctx.tab is not None:
        ctx.tab.select(on_show, run_dd, [run_dd, run_md, card_md], show_progress="hidden")

    def on_rerun(value, n, b, request: gr.Request):
        return rerun_updates(rerun_view(value, n, b, lang_of(request)))

    gr.on([num_gpus.change, backend.change], on_rerun, [run_dd, num_gpus, backend],
          [yaml_code, train_cmd, launch_cmd, backend_md, acc_btn], show_progress="hidden")

    def on_export(value, a, m, c, g, kinds, n, b, request: gr.Request, progress=gr.Progress()):
        out = export(value, a, m, c, g, n, b, lang_of(request), progress=_gr_progress(progress), gguf_types=kinds)
        updates = {status_md: out["status"]}
        session = session_of(request)
        if "zip" in out:
            updates[zip_btn] = gr.DownloadButton(value=_servable(out["zip"], session), visible=bool(out["zip"]))
        if out.get("files"):
            updates[files] = gr.File(value=[_servable(f, session) for f in out["files"]], visible=True)
        if "card" in out:
            updates[card_md] = out["card"]
        return updates

    # Merging loads a whole model: one export at a time across every session.
    export_btn.click(on_export, [run_dd, adapter_cb, merge_cb, card_cb, gguf_cb, gguf_types, num_gpus, backend],
                     [status_md, zip_btn, files, card_md], concurrency_limit=1, concurrency_id="export")

    def on_push(value, repo_id, priv, tok, what, request: gr.Request, progress=gr.Progress()):
        return {hub_md: push(value, repo_id, priv, tok, what, lang_of(request), progress=_gr_progress(progress))["hub"]}

    push_btn.click(on_push, [run_dd, repo, private, token, push_what], [hub_md],
                   concurrency_limit=1, concurrency_id="export")

    return {"run": run_dd, "export": export_btn, "push": push_btn}
