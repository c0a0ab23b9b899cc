"""The Export tab: a finished run as a LoRA adapter (folder and zip), a merged model, a model card, an
optional GGUF file, a push to the Hugging Face Hub, and the exact config and commands to re-run it on one
GPU or many.

The engine (studio.export) does the work; the handlers here are plain functions over plain values that
return dicts keyed by names ("status", "zip", "card", ...), and `build(ctx)` maps those names to
components, so the tests drive the tab without a browser.

Hub tokens: the password box's value reaches `push` as an argument for one click, goes to the engine,
and is never returned, kept in a gr.State, logged or written. Every string `push` returns is scrubbed of
it anyway, in case a library's error message quoted it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import gradio as gr

from studio import export as ex
from studio.engine import runs
from studio.engine.job import is_busy as training_busy
from studio.errors import Sentence, StudioError, error_text
from studio.paths import confine
from studio.space import safe_mode
from studio.ui.i18n import lang_of, t, text

Progress = Callable[[float, str], None]


BACKEND_LABELS = {"fsdp": "FSDP", "deepspeed": "DeepSpeed ZeRO-3", "deepspeed-zero2": "DeepSpeed ZeRO-2", "ddp": "DDP"}


# ---- the run ---------------------------------------------------------------------------------------

def has_model(run_dir: str | Path) -> bool:
    rd = Path(run_dir)
    return (rd / "adapter" / "adapter_config.json").is_file() or (rd / "model" / "config.json").is_file()


def is_full(run_dir: str | Path) -> bool:
    return not (Path(run_dir) / "adapter" / "adapter_config.json").is_file()


def run_choices() -> list[tuple[str, str]]:
    """Runs with a trained model (an adapter, or full weights), newest first, as (name, folder)."""
    return [(rd.name, str(rd)) for rd in runs.list_runs() if has_model(rd)]


def checked_run(run_dir: str | None, lang: str = "en") -> Path:
    """The run folder, if it is one the app lists: a value from the browser never names another folder."""
    if run_dir:
        want = confine(run_dir)  # the one gate for paths from the page; then: a listed run
        for rd in runs.list_runs():
            if rd.resolve() == want and has_model(rd):
                return rd
    raise StudioError(text("export.no_run", "en"), text("export.no_run", "zh"))


def default_run(ctx_run: dict | None) -> str | None:
    """The run the Train tab picked when it has a model, else the newest one that has."""
    want = (ctx_run or {}).get("run_dir")
    choices = run_choices()
    if want:
        for _, folder in choices:
            if Path(folder).resolve() == Path(want).resolve():
                return folder
    return choices[0][1] if choices else None


def _message(e: BaseException, lang: str, token: str | None = None) -> str:
    msg = error_text(e, lang) if isinstance(e, StudioError) else text("export.failed", lang, error=f"{type(e).__name__}: {e}")
    return "⚠️ " + _scrub(msg, token)


def _in_lang(progress: Progress | None, lang: str) -> Progress | None:
    """The engine's progress messages (Sentences) in the reader's language."""
    if progress is None:
        return None
    return lambda fraction, message: progress(
        fraction, message.text(lang) if isinstance(message, Sentence) else str(message))


def _scrub(s, token: str | None):
    return s.replace(token, "***") if (token and isinstance(s, str)) else s


def gguf_problem(run_dir: str | Path, lang: str = "en") -> str | None:
    """None when this run's merged model can be written as GGUF, else the sentence that says why not (in
    `lang`). The merged model has the base's architecture and tokenizer, so the base folder answers the question."""
    from studio.models.loading import resolve

    try:
        source = Path(resolve(runs.load_run_config(run_dir).model.name))
    except Exception as e:  # a Hub id not downloaded yet, say
        return error_text(e, lang) or type(e).__name__
    model = Path(run_dir) / "model"
    problem = ex.gguf_support(model if (model / "config.json").is_file() else source)
    return problem.text(lang) if problem else None


def describe_run(run_dir: str | None, lang: str = "en") -> dict:
    """{"run_md", "card", "adapter_ok", "gguf_ok", "gguf_info"} for the chosen run."""
    if not run_dir:
        return {"run_md": text("export.no_runs" if not run_choices() else "export.no_run", lang), "card": "",
                "adapter_ok": False, "gguf_ok": False, "gguf_info": ""}
    try:
        rd = checked_run(run_dir, lang)
        cfg = runs.load_run_config(rd)
    except StudioError as e:
        return {"run_md": _message(e, lang), "card": "", "adapter_ok": False, "gguf_ok": False, "gguf_info": ""}
    full = is_full(rd)
    method = (text("export.kind.full", lang) if full
              else text("export.kind.lora", lang, method={"qlora": "QLoRA"}.get(cfg.method.method, "LoRA")))
    line = text("export.run_line", lang, run=rd.name, model=cfg.model.name, method=method,
                stage=cfg.training.stage.upper(), out=ex.default_out_dir(rd))
    problem = gguf_problem(rd, lang)
    try:
        card = card_preview(ex.model_card(rd, "merged" if full else "adapter"))
    except Exception as e:
        card = _message(e, lang)
    return {"run_md": line, "card": card, "adapter_ok": not full, "gguf_ok": problem is None,
            "gguf_info": text("export.gguf_no", lang, why=problem) if problem else ""}


def card_preview(card: str) -> str:
    """The card as Markdown for the page: its YAML front matter (Hub metadata) shown as a code block, since
    Markdown would run it together into one line."""
    if card.startswith("---\n"):
        end = card.find("\n---\n", 4)
        if end > 0:
            return f"```yaml\n{card[4:end]}\n```\n{card[end + 5:]}"
    return card


# ---- re-run ----------------------------------------------------------------------------------------

def rerun_view(run_dir: str | None, num_gpus=2, backend: str = "fsdp", lang: str = "en") -> dict:
    """{"yaml", "train_cmd", "launch_cmd", "backend_help", "accelerate_file"}: the exact config and the
    commands as they will read in the export's rerun/ folder, and the accelerate config to download."""
    backend = backend if backend in ex.BACKENDS else "fsdp"
    n = max(1, int(num_gpus or 1))
    config = Path("rerun") / runs.CONFIG
    acc = Path("rerun") / f"accelerate-{backend}.yaml"
    out = {"backend_help": text(f"export.backend.{backend}", lang), "train_cmd": ex.train_command(config),
           "launch_cmd": ex.launch_command(config, n, backend, accelerate_config=acc),
           "accelerate_file": _accelerate_download(backend)}
    try:
        rd = checked_run(run_dir, lang)
        out["yaml"] = runs.load_run_config(rd).to_yaml()
    except StudioError as e:
        out["yaml"] = f"# {error_text(e, lang)}"
    return out


def _accelerate_download(backend: str) -> str:
    """The backend's accelerate config under the name the commands use, in a temp folder Gradio serves.
    The same preset for every session (it holds nothing of anyone's), written only when it differs, and
    atomically: a session downloading it never reads a half-written copy."""
    from studio.paths import atomic_write_text

    target = Path(tempfile.gettempdir()) / "finetune-studio-downloads" / "accelerate" / f"accelerate-{backend}.yaml"
    content = ex.accelerate_config_path(backend).read_text(encoding="utf-8")
    if not target.is_file() or target.read_text(encoding="utf-8") != content:
        atomic_write_text(target, content)
    return str(target)


# ---- export ----------------------------------------------------------------------------------------

def export(run_dir: str | None, adapter: bool = True, merge: bool = False, card: bool = True, gguf: bool = False,
           num_gpus=2, backend: str = "fsdp", lang: str = "en", progress: Progress | None = None,
           is_busy: Callable[[], bool] = training_busy, out_dir: str | Path | None = None) -> dict:
    """Export what was ticked. Returns {"status", "zip", "files", "card"}: "zip" is the adapter zip's path or
    None, "files" the other files worth downloading (GGUF, re-run config)."""
    try:
        rd = checked_run(run_dir, lang)
        full = is_full(rd)
        adapter = bool(adapter) and not full
        merge, gguf = bool(merge) or (full and bool(adapter)), bool(gguf)
        if not (adapter or merge or card or gguf):
            return {"status": text("export.nothing", lang)}
        notes = []
        if (merge or gguf) and is_busy():
            merge = gguf = False
            notes.append(text("export.busy_merge", lang))
        res = ex.export_run(rd, out_dir, adapter=adapter, zip=adapter, merge=merge, card=card, gguf=gguf,
                            num_gpus=max(1, int(num_gpus or 1)), backend=backend if backend in ex.BACKENDS else "fsdp",
                            progress=_in_lang(progress, lang))
    except Exception as e:
        return {"status": _message(e, lang)}
    parts = [text("export.part.card", lang)] if res.card else []
    parts += [text("export.part.adapter", lang)] if res.adapter_zip else []
    parts += [text("export.part.merged", lang, path=res.merged_dir)] if res.merged_dir else []
    parts += [text("export.part.gguf", lang)] if res.gguf_file else []
    parts += [text("export.part.rerun", lang)] if res.rerun else []
    status = text("export.done", lang, out=res.out_dir, what=", ".join(parts))
    files = [str(f) for f in ([res.gguf_file] if res.gguf_file else [])]
    if res.rerun:
        files += [str(f) for f in sorted(res.rerun.folder.iterdir()) if f.is_file()]
    out = {"status": "\n\n".join([*notes, status, *res.notes]), "zip": str(res.adapter_zip) if res.adapter_zip else None,
           "files": files}
    if res.card:
        out["card"] = card_preview(res.card.read_text(encoding="utf-8"))
    return out


def push(run_dir: str | None, repo: str, private: bool = True, token: str | None = None, what: str = "adapter",
         lang: str = "en", progress: Progress | None = None, is_busy: Callable[[], bool] = training_busy,
         out_dir: str | Path | None = None, space: bool | None = None) -> dict:
    """Push the adapter or the merged model to the Hub. Returns {"hub"}: the URL, or one sentence."""
    token = (token or "").strip() or None
    try:
        rd = checked_run(run_dir, lang)
        if space is None:
            space = safe_mode().enabled
        repo = (repo or "").strip()
        if not repo:
            return {"hub": "⚠️ " + text("export.no_repo", lang)}
        if space and not token:
            # On a public Space HF_TOKEN is the owner's secret: a visitor must bring their own token.
            return {"hub": "⚠️ " + text("export.space_token", lang)}
        if not token:
            from huggingface_hub import get_token

            if not get_token():  # say so before exporting (or merging) anything
                return {"hub": "⚠️ " + text("export.no_token", lang)}
        what = "merged" if is_full(rd) else ("merged" if what == "merged" else "adapter")
        if what == "merged" and is_busy():
            return {"hub": "⏳ " + text("export.busy_push_merged", lang)}
        res = ex.export_run(rd, out_dir, adapter=what == "adapter", merge=what == "merged", card=True,
                            push_repo=repo, private=bool(private), token=token,
                            push_what=what, progress=_in_lang(progress, lang))
    except Exception as e:
        return {"hub": _message(e, lang, token)}
    visibility = text("export.private.yes" if private else "export.private.no", lang)
    return {"hub": _scrub("✅ " + text("export.pushed", lang, url=res.hub_url, visibility=visibility), token)}


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
        refresh_btn = gr.Button(t("export.refresh"), scale=1, min_width=100, size="md", elem_id="export-refresh")
    run_md = gr.Markdown(elem_id="export-run-info")

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            gr.Markdown(t("export.what"))
            adapter_cb = gr.Checkbox(True, label=t("export.adapter"), elem_id="export-adapter")
            merge_cb = gr.Checkbox(False, label=t("export.merge"), info=t("export.merge.info"), elem_id="export-merge")
            card_cb = gr.Checkbox(True, label=t("export.card"), elem_id="export-card")
            gguf_cb = gr.Checkbox(False, label=t("export.gguf"), elem_id="export-gguf")
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
        want = (current or {}).get("run_dir")
        if not (want and has_model(want)):
            return {run_dd: gr.Dropdown(choices=run_choices(), value=value)}
        want = default_run(current)
        out = {run_dd: gr.Dropdown(choices=run_choices(), value=want)}
        if want != value:
            out.update(run_updates(want, lang_of(request)))
        return out

    ctx.run.change(on_ctx_run, [ctx.run, run_dd], [run_dd, *run_outputs], show_progress="hidden")

    def on_refresh(value, request: gr.Request):
        choices = run_choices()
        value = value if any(v == value for _, v in choices) else (choices[0][1] if choices else None)
        return {run_dd: gr.Dropdown(choices=choices, value=value), **run_updates(value, lang_of(request))}

    refresh_btn.click(on_refresh, run_dd, [run_dd, *run_outputs], show_progress="hidden")

    def on_rerun(value, n, b, request: gr.Request):
        return rerun_updates(rerun_view(value, n, b, lang_of(request)))

    gr.on([num_gpus.change, backend.change], on_rerun, [run_dd, num_gpus, backend],
          [yaml_code, train_cmd, launch_cmd, backend_md, acc_btn], show_progress="hidden")

    def on_export(value, a, m, c, g, n, b, request: gr.Request, progress=gr.Progress()):
        out = export(value, a, m, c, g, n, b, lang_of(request), progress=_gr_progress(progress))
        updates = {status_md: out["status"]}
        session = getattr(request, "session_hash", None) or "local"
        if "zip" in out:
            updates[zip_btn] = gr.DownloadButton(value=_servable(out["zip"], session), visible=bool(out["zip"]))
        if out.get("files"):
            updates[files] = gr.File(value=[_servable(f, session) for f in out["files"]], visible=True)
        if "card" in out:
            updates[card_md] = out["card"]
        return updates

    # Merging loads a whole model: one export at a time across every session.
    export_btn.click(on_export, [run_dd, adapter_cb, merge_cb, card_cb, gguf_cb, num_gpus, backend],
                     [status_md, zip_btn, files, card_md], concurrency_limit=1, concurrency_id="export")

    def on_push(value, repo_id, priv, tok, what, request: gr.Request, progress=gr.Progress()):
        return {hub_md: push(value, repo_id, priv, tok, what, lang_of(request), progress=_gr_progress(progress))["hub"]}

    push_btn.click(on_push, [run_dd, repo, private, token, push_what], [hub_md],
                   concurrency_limit=1, concurrency_id="export")

    return {"run": run_dd, "export": export_btn, "push": push_btn}
