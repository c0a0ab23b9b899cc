"""The Train tab's "runs" section, under the history: compare runs side by side, try several models one
after another (the queue), and try it small first.

Layout and wording only. The comparison is studio.evaluate.compare_runs, the queue studio.engine.queue
(a file in the runs folder: the table reads it again on every tick, so a reload or a restart shows the
same queue), the trial studio.engine.trial. The handlers are plain functions over plain values (tests
drive them without a browser); `build(ctx, settings, base)` wires them to components, reading the Train
tab's own settings so a queue or a trial trains exactly what Start would.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import space
from studio.engine import queue, runs, trial
from studio.engine.settings import build_config
from studio.errors import StudioError, error_text
from studio.evaluate import compare_runs
from studio.messages import text_of
from studio.models import catalog
from studio.ui.i18n import lang_of, t, text

TICK_S = 3.0  # the queue table's refresh (one small file read per open page; nothing sent when unchanged)
QUEUE_COLS = ("id", "model", "status", "run")


# ---- compare runs ---------------------------------------------------------------------------------

def compare_view(names: list[str] | None, lang: str = "en") -> dict:
    """{"summary", "table" (DataFrame), "curves" (LinePlot payload)} for the runs named (two or more)."""
    dirs = [d for d in (runs.run_dir_of(n) for n in names or []) if d]
    if len(dirs) < 2:
        return {"summary": text("runs.compare.pick_two", lang), "table": pd.DataFrame(), "curves": None}
    facts = compare_runs.gather(dirs)
    headers, rows = compare_runs.table(facts, lang)
    return {"summary": compare_runs.summary_line(facts, lang), "table": pd.DataFrame(rows, columns=headers),
            "curves": compare_runs.curves(facts, lang)}


# ---- the queue ------------------------------------------------------------------------------------

def _status(status: str, lang: str) -> str:
    return text(f"queue.status.{status}", lang) if status in ("waiting", "running", "cancelled") else text(f"train.state.{status}", lang)


def queue_frame(lang: str = "en") -> pd.DataFrame:
    rows = [(e["id"], e["label"], _status(e["status"], lang), Path(e["run_dir"]).name if e.get("run_dir") else "")
            for e in queue.entries()]
    return pd.DataFrame(rows, columns=[text(f"queue.col.{c}", lang) for c in QUEUE_COLS])


def queue_choices(lang: str = "en") -> list[tuple[str, str]]:
    return [(f"{e['label']} · {_status(e['status'], lang)}", e["id"]) for e in queue.entries()]


def queue_line(lang: str = "en") -> str:
    q = queue.load()
    waiting = sum(1 for e in q["entries"] if e["status"] == queue.WAITING)
    running = next((e["label"] for e in q["entries"] if e["status"] == queue.RUNNING), None)
    if not q["entries"]:
        return text("queue.line.empty", lang)
    if running:
        return text("queue.line.running", lang, model=running, waiting=waiting)
    return text("queue.line.waiting" if waiting else "queue.line.done", lang, waiting=waiting)


def queue_models(settings: dict, base: dict, models: list[str] | None, lang: str = "en") -> str:
    """Queue the Train tab's data and settings on each chosen model, and run the queue."""
    if not models or len(models) < 2:
        return text("queue.pick_models", lang)
    try:
        cfg = space.check_browser_config(build_config(settings, base))
        queue.add(cfg, list(models))
    except StudioError as e:
        return error_text(e, lang)
    return text_of(queue.start(), lang)


def model_choices() -> list[tuple[str, str]]:
    return [(f"{e.id} · {e.size_label}", e.id) for e in catalog.load() if not e.needs_remote_code]


def queue_signature() -> tuple:
    """What the queue table shows changes only when this does (checked every tick, per page)."""
    try:
        stat = queue.path().stat()
        return (stat.st_mtime_ns, stat.st_size)
    except OSError:
        return (0, 0)


# ---- try it small ---------------------------------------------------------------------------------

def trial_steps(settings: dict, base: dict, lang: str = "en", poll_s: float = 1.0):
    """Run the trial and yield what to show as it goes: the plan, its progress, then the verdict."""
    try:
        cfg = space.check_browser_config(build_config(settings, base))
        if not cfg.data.train_file:
            yield text("train.no_data", lang)
            return
        small = trial.small_model_for(cfg.model.name)
        job = trial.start(cfg, small=small)
    except StudioError as e:
        yield error_text(e, lang)
        return
    head = text("trial.small_model", lang, model=small, steps=trial.TRIAL_STEPS)
    yield head
    while not job.wait(poll_s):
        snap = job.snapshot()
        yield head + "\n\n" + text("trial.running", lang, step=snap["step"], total=snap["total_steps"] or "?")
    result = trial.verdict(job.run_dir, cfg)
    yield head + "\n\n" + "\n".join(f"- {html.escape(m.text(lang))}" for m in result.lines)


# ---- the layout -----------------------------------------------------------------------------------

def build(ctx, settings: dict, base: gr.State) -> None:
    """`settings`: the Train tab's setting components by name (studio.engine.settings.SETTING_NAMES)."""
    names, comps = list(settings), list(settings.values())
    seen = gr.State({})  # what this page's queue table last showed

    with gr.Accordion(t("runs.section"), open=False, elem_id="runs-section"):
        gr.Markdown(t("runs.compare.title"))
        with gr.Row():
            pick = gr.Dropdown(choices=runs.run_names(), multiselect=True, label=t("runs.compare.pick"), scale=4,
                               elem_id="runs-compare-pick")
            show = gr.Button(t("runs.compare.show"), scale=1, elem_id="runs-compare-show")
        summary = gr.Markdown(elem_id="runs-compare-summary")
        curves = gr.LinePlot(x="step", y="loss", color="series", label=t("runs.compare.chart"), height=300,
                             x_title="step", y_title="loss", elem_id="runs-compare-plot", visible=False)
        table = gr.Dataframe(interactive=False, wrap=True, elem_id="runs-compare-table", visible=False)

        gr.Markdown(t("queue.title"))
        with gr.Row():
            models = gr.Dropdown(choices=model_choices(), multiselect=True, max_choices=3, allow_custom_value=True,
                                 label=t("queue.models"), info=t("queue.models.info"), scale=4, elem_id="queue-models")
            add = gr.Button(t("queue.add"), variant="primary", scale=1, elem_id="queue-add")
        queue_md = gr.Markdown(elem_id="queue-line")
        queue_table = gr.Dataframe(interactive=False, wrap=True, elem_id="queue-table")
        with gr.Row():
            entry = gr.Dropdown(choices=[], label=t("queue.entry"), scale=3, elem_id="queue-entry")
            cancel = gr.Button(t("queue.cancel"), scale=1, size="sm", elem_id="queue-cancel")
            remove = gr.Button(t("queue.remove"), scale=1, size="sm", elem_id="queue-remove")
            run = gr.Button(t("queue.run"), scale=1, size="sm", elem_id="queue-run")
            compare_queue = gr.Button(t("queue.compare"), scale=1, size="sm", elem_id="queue-compare")

        gr.Markdown(t("trial.title"))
        trial_btn = gr.Button(t("trial.start"), elem_id="trial-start")
        trial_md = gr.Markdown(elem_id="trial-result")
    tick = gr.Timer(TICK_S)

    def compared(names_picked, lang):
        v = compare_view(names_picked, lang)
        shown = v["curves"] is not None
        return {summary: v["summary"], table: gr.Dataframe(v["table"], visible=shown),
                curves: gr.LinePlot(v["curves"] if shown else None, visible=shown)}

    def on_show(names_picked, request: gr.Request):
        return compared(names_picked, lang_of(request))

    show.click(on_show, pick, [summary, table, curves])

    def queue_update(lang: str) -> dict:
        return {queue_md: queue_line(lang), queue_table: queue_frame(lang),
                entry: gr.Dropdown(choices=queue_choices(lang), value=None)}

    def on_tick(state, request: gr.Request):
        lang = lang_of(request)
        now = {"queue": list(queue_signature()), "runs": runs.run_names()}
        if state == now:
            return {seen: gr.skip()}
        out = {seen: now}
        if state.get("queue") != now["queue"]:
            out.update(queue_update(lang))
        if state.get("runs") != now["runs"]:
            out[pick] = gr.Dropdown(choices=now["runs"])
        return out

    tick.tick(on_tick, seen, [seen, queue_md, queue_table, entry, pick], show_progress="hidden",
              concurrency_limit=None)
    def restore(ws: dict, lang: str, session: str) -> dict:
        """The page opens: the queue and the runs as they are now, in the reader's language."""
        now = {"queue": list(queue_signature()), "runs": runs.run_names()}
        return {seen: now, **queue_update(lang), pick: gr.Dropdown(choices=now["runs"])}

    ctx.on_restore(restore, [seen, queue_md, queue_table, entry, pick])

    def named(values: dict) -> dict:
        return {n: values[c] for n, c in zip(names, comps)}

    def on_add(values: dict, request: gr.Request):
        lang = lang_of(request)
        message = queue_models(named(values), values[base], values[models], lang)
        return {queue_md: message, queue_table: queue_frame(lang), entry: gr.Dropdown(choices=queue_choices(lang))}

    add.click(on_add, {models, base, *comps}, [queue_md, queue_table, entry], concurrency_limit=1,
              concurrency_id="train-control")

    def act(fn):
        def handler(entry_id, request: gr.Request):
            lang = lang_of(request)
            try:
                message = text_of(fn(entry_id), lang) if entry_id else text("queue.pick_entry", lang)
            except StudioError as e:
                message = error_text(e, lang)
            return {**queue_update(lang), queue_md: message}
        return handler

    for button, fn in ((cancel, queue.cancel), (remove, queue.remove)):
        button.click(act(fn), entry, [queue_md, queue_table, entry])
    def on_run(request: gr.Request):
        lang = lang_of(request)
        return {**queue_update(lang), queue_md: text_of(queue.start(), lang)}

    run.click(on_run, None, [queue_md, queue_table, entry])

    def on_compare_queue(request: gr.Request):
        done = [Path(p).name for p in queue.finished_runs()]
        return {pick: gr.Dropdown(choices=runs.run_names(), value=done), **compared(done, lang_of(request))}

    compare_queue.click(on_compare_queue, None, [pick, summary, table, curves])

    def on_trial(values: dict, request: gr.Request):
        yield from trial_steps(named(values), values[base], lang_of(request))

    trial_btn.click(on_trial, {base, *comps}, trial_md, concurrency_limit=1, concurrency_id="train-control")
    queue.restart_if_active()  # a queue that was running when the app last stopped goes on
