"""The Train tab: set up a run, start it, watch it learn live, stop or resume it, re-open past runs.

The handlers are plain functions over plain values that return dicts keyed by names ("progress",
"loss", ...); `build(ctx)` maps those names to components. So the tests drive the whole tab without
a browser, and the browser only ever sees what these functions return.

The settings, presets and data checks are studio.engine.settings; starting, stopping and resuming are
studio.engine.control; the plan is studio.plan. One job per server (studio.engine.job): a poller in
every page (studio/ui/live.py) reads a cheap live key every second and fires the tab's update event when
the run moved on (studio.engine.live decides what each session must redraw), so every viewer sees the
same live run and a refreshed page re-attaches within a second.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import space, units, workspace
from studio.config import OPTIMIZERS, RunConfig
from studio.engine import control, health, runs
from studio.engine import history as run_history
from studio.engine.job import FINAL_STATES, current_job
from studio.engine.live import live_panel, poll
from studio.engine.settings import (FORMAT_STAGE, SETTING_NAMES, build_config, check_data_file, data_line,
                                    load_recipe, preset_values, recipe_choices, settings_from_config, with_data,
                                    with_model)
from studio.errors import StudioError, error_text
from studio.messages import text_of
from studio.paths import confine, keep_upload
from studio.plan import plan
from studio.ui import plots, runs_panel
from studio.ui.i18n import lang_of, t, text
from studio.ui.live import POLLER_JS
from studio.ui.workspace import session_of

TITLE = t("train.tab")


# ---- the plan: trainable parameters, steps, duration, memory ------------------------------------------

def duration(seconds: float | None, lang: str = "en") -> str:
    return units.seconds_text(seconds, lang)


def plan_markdown(cfg: RunConfig, lang: str = "en") -> str:
    """The run plan (studio.plan, the same one the Model tab, `studio estimate` and the trainer use) in words."""
    p = plan(cfg)
    lines = [text("train.model_line", lang, model=cfg.model.name, method=cfg.method.method.upper())]
    if p.estimate is not None and p.verdict:
        lines.append(text("train.memory_line", lang, need=_gib(p.total_bytes), have=_gib(p.capacity_bytes),
                          where=p.where.text(lang), verdict=text(f"train.verdict.{p.verdict}", lang)))
        lines.append(text("model.precision_line", lang, weights=p.weights.upper(), precision=p.precision.upper()))
        lines.append(p.gc_reason.text(lang))
    elif p.error is not None:
        lines.append(text("train.memory_unknown", lang, error=p.error.text(lang)))
    if p.trainable_params:
        share = p.trainable_params / max(1, p.total_params)
        lines.append(text("train.params_line", lang, trainable=units.count_text(p.trainable_params), total=units.count_text(p.total_params),
                          share=f"{100 * share:.2f}%"))
    if p.steps:
        lines.append(text("train.plan_line", lang, rows=p.rows, val=p.eval_rows if p.eval_rows is not None else "—",
                          steps=p.steps, tokens=f"{p.tokens:,}"))
    if p.duration_s:
        lines.append(text("train.duration_line", lang, duration=duration(p.duration_s, lang),
                          device=p.device.upper(), basis=p.speed_basis.text(lang)))
    return "\n\n".join(lines)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


# ---- control (studio.engine.control decides; these say it in the reader's language) ------------------

def start_run(settings: dict, base: dict, lang: str = "en") -> dict:
    """Start a run. Returns {"status": message, "started": bool}."""
    try:
        cfg = build_config(settings, base)
    except StudioError as e:
        return {"status": error_text(e, lang), "started": False}
    message, started = control.start(cfg)
    return {"status": text_of(message, lang), "started": started}


def stop_run(lang: str = "en") -> dict:
    return {"status": text_of(control.stop(), lang)}


def resume_run(run_dir: str | None, lang: str = "en") -> dict:
    """Resume the chosen past run, or else the last job if it stopped or failed."""
    message, started = control.resume(run_dir)
    return {"status": text_of(message, lang), "started": started}


# ---- what the live panel shows -------------------------------------------------------------------------

STATE_COLORS = {"idle": "#6b7280", "preparing": "#7c3aed", "training": "#2563eb", "saving": "#7c3aed",
                "completed": "#15803d", "stopped": "#b45309", "failed": "#b91c1c", "interrupted": "#b45309"}


def interrupted_notice(lang: str = "en") -> str:
    """After a restart: the newest run a kill interrupted, and how to resume it ("" when none)."""
    rd = runs.newest_interrupted()
    if rd is None:
        return ""
    rd = Path(rd)
    ck = runs.last_checkpoint(rd)
    if ck is None:
        return text("train.interrupted_no_checkpoint", lang, run=rd.name)
    step = runs.read_summary(rd).get("steps", 0)
    return text("train.interrupted_notice", lang, run=rd.name, step=step, ck=runs.checkpoint_step(ck))


def progress_html(snap: dict | None, lang: str = "en", title: str = "") -> str:
    """A progress bar with the state, step / total, epoch, elapsed time and ETA."""
    if not snap:
        return f'<div class="train-progress"><p>{html.escape(interrupted_notice(lang) or text("train.idle", lang))}</p></div>'
    state = snap.get("state", "idle")
    step, total = int(snap.get("step") or 0), int(snap.get("total_steps") or 0)
    pct = 100.0 * step / total if total else (100.0 if state == "completed" else 0.0)
    if state == "completed":
        pct = 100.0
    color = STATE_COLORS.get(state, "#6b7280")
    ticking = state in ("preparing", "training", "saving")

    def clock(seconds, direction: str) -> str:  # the page's poller moves it on between updates
        shown = html.escape(duration(seconds, lang))
        if not ticking or seconds is None:
            return shown
        return f'<span class="tp-clock" data-s="{float(seconds):.1f}" data-dir="{direction}" data-lang="{lang}">{shown}</span>'

    # The engine decides what the line counts (studio.engine.runs.progress_shown): steps, or epochs too.
    by_epochs = snap.get("bound") == "epochs"
    line = html.escape(text("train.progress" if by_epochs else "train.progress.steps", lang, step=step,
                            total=total or "?", epoch=f"{float(snap.get('epoch') or 0):.2f}",
                            epochs=_num(snap.get("epochs")), elapsed="\x00")
                       ).replace("\x00", clock(snap.get("elapsed_s"), "up"))
    if snap.get("eta_s") is not None and state == "training":
        line += html.escape(text("train.eta", lang, eta="\x00")).replace("\x00", clock(snap["eta_s"], "down"))
    head = text(f"train.state.{state}", lang) if state in STATE_COLORS else state
    if snap.get("stopping"):
        head = text("train.state.stopping", lang)
    run = Path(snap["run_dir"]).name if snap.get("run_dir") else ""
    error = text_of(snap.get("error_message") or snap.get("error") or "", lang)
    err = f'<p class="train-error" style="color:#b91c1c;margin:.3em 0 0">{html.escape(error)}</p>' if error else ""
    if snap.get("stop_message"):
        err += f'<p class="train-stopping" style="margin:.3em 0 0">{html.escape(text_of(snap["stop_message"], lang))}</p>'
    title_html = f"{html.escape(title)} · " if title else ""
    return (f'<div class="train-progress" data-state="{state}" data-step="{step}" data-total="{total}">'
            f'<div style="display:flex;justify-content:space-between;gap:1em;flex-wrap:wrap">'
            f'<strong style="color:{color}">{title_html}{html.escape(head)}</strong>'
            f'<span style="opacity:.7;font-family:monospace">{html.escape(run)}</span></div>'
            f'<div role="progressbar" aria-valuemin="0" aria-valuemax="{total}" aria-valuenow="{step}" '
            f'style="height:14px;border-radius:7px;background:#e5e7eb;overflow:hidden;margin:.4em 0">'
            f'<div style="height:100%;width:{pct:.1f}%;background:{color};transition:width .5s"></div></div>'
            f'<span>{line}</span>{err}</div>')


def _num(x) -> str:
    if x is None:
        return "?"
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def health_html(findings: list[health.Finding], lang: str = "en", active: bool = True) -> str:
    if not findings:
        if not active:
            return ""
        return f'<div class="train-health ok" style="color:#15803d">✓ {html.escape(text("train.healthy", lang))}</div>'
    parts = []
    for f in findings:
        bg, fg = ("#fef2f2", "#991b1b") if f.level == "error" else ("#fffbeb", "#92400e")
        icon = "⛔" if f.level == "error" else "⚠️"
        parts.append(f'<div class="train-health {f.code}" data-code="{f.code}" role="alert" style="background:{bg};'
                     f'color:{fg};border-radius:8px;padding:.6em .8em;margin:.3em 0">{icon} '
                     f'{html.escape(f.text(lang))}</div>')
    return "".join(parts)


def run_findings(metrics: list[dict], error: str | None, cfg: RunConfig | None) -> list[health.Finding]:
    lr = cfg.training.learning_rate if cfg else None
    method = cfg.method.method if cfg else "lora"
    return health.check(metrics, error, learning_rate=lr, method=method)


def live_view(snap: dict | None, cfg: RunConfig | None, lang: str = "en", title: str = "") -> dict:
    """Everything the live panel shows for one snapshot (or a past run dressed as one)."""
    metrics = (snap or {}).get("metrics") or []
    active = bool(snap) and snap.get("state") not in FINAL_STATES + ("interrupted",)
    out = {"progress": progress_html(snap, lang, title),
           "health": health_html(run_findings(metrics, (snap or {}).get("error"), cfg), lang,
                                 active=active and bool(metrics)),
           "log": log_text(snap, lang)}
    out.update(plots.payloads(metrics, lang))
    return out


def log_text(snap: dict | None, lang: str = "en") -> str:
    """The run's log in the reader's language (the English lines where a message was not kept)."""
    kept = (snap or {}).get("log_messages")
    if kept:
        return "\n".join(f"{m['time']} {text_of(m['message'], lang)}" for m in kept)
    return "\n".join((snap or {}).get("log") or [])


def open_run(run_dir: str, lang: str = "en") -> dict:
    """Re-open a past run: its curves, summary and health, and pick it for Compare / Export."""
    snap = runs.past_run_snapshot(run_dir)
    try:
        cfg = runs.load_run_config(run_dir)
    except Exception:
        cfg = None
    out = live_view(snap, cfg, lang, title=text("train.viewing", lang, run="").strip())
    out["status"] = text("train.opened", lang, run=Path(run_dir).name)
    out["run"] = {"run_dir": str(run_dir)}
    return out


# ---- history ---------------------------------------------------------------------------------------------

def history_frame(lang: str = "en", limit: int = 50) -> pd.DataFrame:
    """The run history (studio.engine.history) as a table in the reader's language."""
    table = [[r["run"], text(f"train.state.{r['status']}", lang) if r["status"] in STATE_COLORS else r["status"],
              r["stage"], r["model"], r["steps"], r["train_loss"], r["eval_loss"],
              text("train.best_at", lang, **r["best_eval"]) if r["best_eval"] else "",
              duration(r["duration_s"], lang) if r["duration_s"] else ""] for r in run_history.rows(limit)]
    return pd.DataFrame(table, columns=[text(f"train.col.{c.removesuffix('_s')}", lang) for c in run_history.COLUMNS])


# ---- the layout --------------------------------------------------------------------------------------------



def build(ctx) -> dict:
    d = RunConfig()
    tr, me = d.training, d.method
    base = gr.State(d.to_dict())  # the config under the settings: data, model, and what the tab does not show
    data_info = gr.State({})  # {"source", "rows", "format"} of the chosen data
    view = gr.State({})  # {"run_dir"} while a past run is open
    seen = gr.State({})  # what this session's live panel last showed

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=360):
            gr.Markdown(t("train.setup"))
            recipe = gr.Dropdown(choices=recipe_choices(), value=None, label=t("train.recipe"), info=t("train.recipe.info"),
                                 elem_id="train-recipe")
            stage = gr.Radio([(t("train.stage.sft"), "sft"), (t("train.stage.cpt"), "cpt"), (t("train.stage.dpo"), "dpo")],
                             value=tr.stage, label=t("train.stage"), info=t("help.TrainingConfig.stage"), elem_id="train-stage")
            preset = gr.Radio([(t("train.preset.quick"), "quick"), (t("train.preset.balanced"), "balanced"),
                               (t("train.preset.thorough"), "thorough")], value="quick", label=t("train.preset"),
                              info=t("train.preset.info"), elem_id="train-preset")
            data_md = gr.Markdown(t("train.no_data"), elem_id="train-data")
            upload = gr.File(label=t("train.upload"), file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"],
                             height=120, elem_id="train-upload")
            plan_md = gr.Markdown(elem_id="train-plan")  # written when the page opens, in its language
            with gr.Accordion(t("train.advanced"), open=False, elem_id="train-advanced"):
                model_name = gr.Textbox(d.model.name, label=t("train.model_name"), info=t("help.ModelConfig.name"),
                                        elem_id="train-model-name")
                method = gr.Radio([("LoRA", "lora"), ("QLoRA", "qlora"), (t("model.method.full"), "full")], value=me.method,
                                  label=t("train.method"), info=t("help.MethodConfig.method"))
                with gr.Row():
                    epochs = gr.Number(tr.epochs, label=t("train.epochs"), info=t("help.TrainingConfig.epochs"), minimum=0)
                    max_steps = gr.Number(tr.max_steps, label=t("train.max_steps"), info=t("help.TrainingConfig.max_steps"),
                                          precision=0, minimum=0, elem_id="train-max-steps")
                learning_rate = gr.Number(tr.learning_rate, label=t("train.learning_rate"),
                                          info=t("help.TrainingConfig.learning_rate"), minimum=0)
                with gr.Row():
                    batch_size = gr.Number(tr.batch_size, label=t("train.batch_size"), info=t("help.TrainingConfig.batch_size"),
                                           precision=0, minimum=1)
                    grad_accum = gr.Number(tr.grad_accum, label=t("train.grad_accum"), info=t("help.TrainingConfig.grad_accum"),
                                           elem_id="train-grad-accum",
                                           precision=0, minimum=1)
                max_length = gr.Number(tr.max_length, label=t("train.max_length"), info=t("help.TrainingConfig.max_length"),
                                       precision=0, minimum=16)
                with gr.Row():
                    lora_rank = gr.Number(me.lora_rank, label=t("train.lora_rank"), info=t("help.MethodConfig.lora_rank"),
                                          precision=0, minimum=1)
                    lora_alpha = gr.Number(me.lora_alpha, label=t("train.lora_alpha"), info=t("help.MethodConfig.lora_alpha"),
                                           precision=0, minimum=1)
                lora_dropout = gr.Slider(0, 0.5, me.lora_dropout, step=0.01, label=t("train.lora_dropout"),
                                         info=t("help.MethodConfig.lora_dropout"))
                target_modules = gr.Textbox(me.target_modules, label=t("train.target_modules"),
                                            info=t("help.MethodConfig.target_modules"))
                warmup_ratio = gr.Slider(0, 0.3, tr.warmup_ratio, step=0.01, label=t("train.warmup_ratio"),
                                         info=t("help.TrainingConfig.warmup_ratio"))
                scheduler = gr.Dropdown(["cosine", "linear", "constant", "constant_with_warmup"], value=tr.scheduler,
                                        label=t("train.scheduler"), info=t("help.TrainingConfig.scheduler"))
                optimizer = gr.Dropdown([(t(f"train.optimizer.{k}"), k) for k in OPTIMIZERS], value=tr.optimizer,
                                        label=t("train.optimizer"), info=t("help.TrainingConfig.optimizer"),
                                        elem_id="train-optimizer")
                with gr.Row():
                    seed = gr.Number(tr.seed, label=t("train.seed"), info=t("help.TrainingConfig.seed"), precision=0)
                    eval_share = gr.Slider(0, 0.5, d.data.eval_share, step=0.01, label=t("train.eval_share"),
                                           info=t("help.DataConfig.eval_share"))
                with gr.Row():
                    patience = gr.Number(tr.early_stopping_patience, label=t("train.early_stopping_patience"),
                                         info=t("help.TrainingConfig.early_stopping_patience"), precision=0, minimum=0,
                                         elem_id="train-patience")
                    final_adapter = gr.Radio([(t("train.final_adapter.best"), "best"),
                                              (t("train.final_adapter.last"), "last")], value=tr.final_adapter,
                                             label=t("train.final_adapter"), info=t("help.TrainingConfig.final_adapter"),
                                             elem_id="train-final-adapter")
            with gr.Row():
                start_btn = gr.Button(t("train.start"), variant="primary", elem_id="train-start")
                stop_btn = gr.Button(t("train.stop"), variant="stop", elem_id="train-stop")
                resume_btn = gr.Button(t("train.resume"), elem_id="train-resume")
            status_md = gr.Markdown(elem_id="train-status")

        with gr.Column(scale=3, min_width=480):
            gr.Markdown(t("train.live"))
            progress = gr.HTML(elem_id="train-progress", js_on_load=POLLER_JS)  # written by the first tick
            health_box = gr.HTML(elem_id="train-health")
            empty = plots.initial_frames()
            loss_plot = gr.LinePlot(empty["loss"], x="step", y="loss", color="series", label=t("train.chart.loss"),
                                    color_map=plots.loss_color_map(), height=300,
                                    **plots.titles("loss"), elem_id="train-loss-plot")
            with gr.Row():
                lr_plot = gr.LinePlot(empty["lr"], x="step", y="learning_rate", label=t("train.chart.lr"), height=170,
                                      **plots.titles("lr"), elem_id="train-lr-plot")
                grad_plot = gr.LinePlot(empty["grad"], x="step", y="grad_norm", label=t("train.chart.grad"), height=170,
                                        **plots.titles("grad"), elem_id="train-grad-plot")
            with gr.Row():
                speed_plot = gr.LinePlot(empty["speed"], x="step", y="tokens_per_second", label=t("train.chart.speed"),
                                         height=170, **plots.titles("speed"), elem_id="train-speed-plot")
                memory_plot = gr.LinePlot(empty["memory"], x="step", y="memory_gib", label=t("train.chart.memory"),
                                          height=170, **plots.titles("memory"), elem_id="train-memory-plot")
            with gr.Accordion(t("train.log"), open=True):
                log_box = gr.Textbox(lines=6, max_lines=6, autoscroll=True, interactive=False, show_label=False,
                                     elem_id="train-log")

    with gr.Accordion(t("train.history"), open=True, elem_id="train-history"):
        history = gr.Dataframe(interactive=False, wrap=True, max_height=300,
                               elem_id="train-history-table")
        with gr.Row():
            past_run = gr.Dropdown(choices=runs.run_names(), value=None, label=t("train.past_run"), scale=4,
                                   elem_id="train-past-run")
            follow_btn = gr.Button(t("train.follow"), scale=1, elem_id="train-follow")
            refresh_btn = gr.Button(t("train.refresh"), scale=1, size="sm")

    settings = [stage, model_name, method, epochs, max_steps, learning_rate, batch_size, grad_accum, max_length,
                lora_rank, lora_alpha, lora_dropout, target_modules, warmup_ratio, scheduler, seed, eval_share,
                optimizer, patience, final_adapter]
    assert len(settings) == len(SETTING_NAMES)
    runs_panel.build(ctx, dict(zip(SETTING_NAMES, settings)), base)  # compare runs, the queue, try it small
    live = {"progress": progress, "health": health_box, "log": log_box, "loss": loss_plot, "lr": lr_plot,
            "grad": grad_plot, "speed": speed_plot, "memory": memory_plot}

    def named(values: dict) -> dict:
        """The settings' values by name, from a handler's {component: value} inputs."""
        return {n: values[c] for n, c in zip(SETTING_NAMES, settings)}

    def settings_update(values: dict) -> dict:
        return {c: values[n] for n, c in zip(SETTING_NAMES, settings) if n in values}

    def live_update(out: dict) -> dict:
        return {live[k]: v for k, v in out.items() if k in live}

    def buttons(state: str | None) -> dict:
        running = state in ("preparing", "training", "saving")
        return {start_btn: gr.Button(interactive=not running), stop_btn: gr.Button(interactive=running),
                resume_btn: gr.Button(interactive=not running)}

    # ---- set-up events
    # Each handler that changes the settings or the data also redraws the plan from the new values, so
    # the plan never trails behind a chain of change events.
    def plan_for(values: dict, b: dict, lang: str, model_ctx: dict | None = None) -> str:
        try:
            return plan_markdown(space.confine_config_paths(build_config(values, b)), lang)
        except StudioError as e:
            return error_text(e, lang)

    def on_recipe(values: dict, request: gr.Request):
        path = values[recipe]
        if not path:
            return {status_md: gr.skip()}  # nothing to change (an empty dict is one value)
        lang = lang_of(request)
        try:
            new_base, values_named = load_recipe(path)
        except StudioError as e:
            return {status_md: error_text(e, lang)}
        info = {**values[data_info], "source": "recipe", "rows": None, "format": None}
        return {base: new_base, data_info: info, data_md: text_of(data_line(new_base, info), lang),
                plan_md: plan_for(values_named, new_base, lang, values[ctx.model]), **settings_update(values_named)}

    recipe.change(on_recipe, {recipe, ctx.model, data_info}, [base, data_info, data_md, status_md, plan_md, *settings])

    def on_preset(values: dict, request: gr.Request):
        now = named(values)
        now.update(preset_values(values[preset], now["method"], now["stage"]))
        return {plan_md: plan_for(now, values[base], lang_of(request), values[ctx.model]), **settings_update(now)}

    preset.input(on_preset, {preset, base, ctx.model, *settings}, [plan_md, *settings])

    def on_ctx_data(values: dict, request: gr.Request):
        value = values[ctx.data]
        if not value or not value.get("train_file") or values[data_info].get("data") == value:
            return {status_md: gr.skip()}  # nothing new (a page that opened again restored it already)
        lang = lang_of(request)
        now = named(values)
        new_base = with_data(values[base], value["train_file"], value.get("eval_file", ""))
        info = {**values[data_info], "source": "data_tab", "rows": value.get("rows"), "format": value.get("format"),
                "data": value}
        out = {base: new_base, data_info: info, data_md: text_of(data_line(new_base, info), lang)}
        want = FORMAT_STAGE.get(value.get("format") or "")
        if want and not (want == now["stage"] or (now["stage"] == "cpt" and want == "sft")):
            out[stage] = now["stage"] = want
        out[plan_md] = plan_for(now, new_base, lang, values[ctx.model])
        return out

    ctx.data.change(on_ctx_data, {ctx.data, ctx.model, base, data_info, *settings},
                    [base, data_info, data_md, stage, status_md, plan_md])

    def on_ctx_model(values: dict, request: gr.Request):
        value = values[ctx.model]
        if not value or values[data_info].get("model") == value:
            return {status_md: gr.skip()}  # nothing new: this choice is in the settings already
        now = named(values)
        new_base = with_model(build_config(now, values[base]).to_dict(), value)
        now = settings_from_config(RunConfig.from_dict(new_base))
        return {base: new_base, data_info: {**values[data_info], "model": value},
                plan_md: plan_for(now, new_base, lang_of(request), value), **settings_update(now)}

    ctx.model.change(on_ctx_model, {ctx.model, base, data_info, *settings}, [base, data_info, status_md, plan_md, *settings])

    def on_upload(values: dict, request: gr.Request):
        f = values[upload]
        if not f:
            return {status_md: gr.skip()}  # nothing to change (an empty dict is one value)
        lang = lang_of(request)
        now = named(values)
        path = f if isinstance(f, str) else getattr(f, "name", str(f))
        try:  # gradio's upload folder only, then a copy of this session's own that no other upload replaces
            path = str(keep_upload(confine(path), session_of(request), "train-uploads"))
        except (StudioError, OSError) as e:
            return {status_md: "⚠️ " + (e.text(lang) if isinstance(e, StudioError) else str(e))}
        res = check_data_file(path, now["stage"])
        if not res["ok"]:
            return {status_md: "⚠️ " + text_of(res["message"], lang)}
        new_base = with_data(values[base], res["train_file"])
        now["stage"] = res["stage"]
        return {base: new_base, data_info: {**values[data_info], "source": "upload", "rows": res["rows"],
                                            "format": res["format"]},
                data_md: text_of(res["message"], lang), stage: res["stage"], status_md: "",
                plan_md: plan_for(now, new_base, lang, values[ctx.model])}

    upload.upload(on_upload, {upload, ctx.model, base, data_info, *settings}, [base, data_info, data_md, stage, status_md, plan_md])

    def on_settings(values: dict, request: gr.Request):
        return plan_for(named(values), values[base], lang_of(request), values[ctx.model])

    # a person editing a setting (.input: not the updates the handlers above make)
    gr.on([c.input for c in settings], on_settings, {*settings, base, ctx.model}, plan_md, trigger_mode="always_last",
          show_progress="hidden")

    # ---- control events
    def on_start(values: dict, request: gr.Request):
        res = start_run(named(values), values[base], lang_of(request))
        out = {status_md: res["status"]}
        if res["started"]:
            out.update({view: {}, seen: {}, past_run: None, **buttons("preparing")})
        return out

    start_btn.click(on_start, {*settings, base}, [status_md, view, seen, past_run, start_btn, stop_btn, resume_btn],
                    concurrency_limit=1, concurrency_id="train-control")

    def on_stop(request: gr.Request):
        return stop_run(lang_of(request))["status"]

    stop_btn.click(on_stop, None, status_md, concurrency_limit=1, concurrency_id="train-control")

    def on_resume(name, request: gr.Request):
        res = resume_run(runs.run_dir_of(name), lang_of(request))
        out = {status_md: res["status"]}
        if res["started"]:
            out.update({view: {}, seen: {}, **buttons("preparing")})
        return out

    resume_btn.click(on_resume, past_run, [status_md, view, seen, start_btn, stop_btn, resume_btn],
                     concurrency_limit=1, concurrency_id="train-control")

    # ---- the live panel
    # The page's poller (POLLER_JS) reads the live key every second and fires the progress bar's click
    # event when it changed: the reply carries the bar, and the curves when the run moved on; when the
    # run's state changes it sets a small server-side State, whose follow-up event sends the buttons and
    # history. A page watching a run that does not move costs the server one cheap GET a second.
    run_key = gr.State(None)  # changes when the run's state does

    LIVE_NAMES = ("health", "log", "loss", "lr", "grad", "speed", "memory")
    live_outputs = [live[k] for k in LIVE_NAMES]

    # One event a second per open page: the progress bar and, when the run moved on, its curves, health
    # and log in the same reply (built once per change of the run, shared by every page).
    # postprocess=False: the values are already in their wire format (HTML and log strings, LinePlot
    # payloads), which spares gradio a walk over every chart point per session.
    def on_tick(v, s, run_state, request: gr.Request):
        lang = lang_of(request)
        out, new_seen = poll(v, s, run_state, lang)
        if "snapshot" in out:
            shown = progress_html(out["snapshot"], lang)
        elif not new_seen.get("opened"):  # the page's first tick: what is there to show
            shown = progress_html(None, lang)
        else:
            shown = gr.skip()
        new_seen["opened"] = True
        updates = {seen: new_seen, progress: shown}
        if "live" in out:
            panel = live_panel(v, live_view, lang)
            if panel is not None:
                updates.update({live[k]: plots.passthrough(panel[k]) if isinstance(panel[k], dict) else panel[k]
                                for k in LIVE_NAMES})
        moving = "snapshot" in out and out["snapshot"]["state"] not in FINAL_STATES
        if "state" in out or out.get("history") or ("live" in out and moving):  # the history follows the run
            updates[run_key] = [out.get("state") or new_seen.get("state"), bool(out.get("history")), time.time()]
        if "run" in out:
            updates[ctx.run] = out["run"]
        return updates

    progress.click(on_tick, [view, seen, ctx.run], [progress, seen, run_key, ctx.run, *live_outputs],
                   show_progress="hidden", api_name="train_poll", concurrency_limit=None, trigger_mode="always_last",
                   postprocess=False)

    def restore(ws: dict, lang: str, session: str) -> dict:
        """The page opens: the settings and data this browser had (its workspace), the plan for them, the
        history and the empty chart, in the reader's language."""
        saved = ws.get("train") or {}
        now = {**settings_from_config(RunConfig()), **(saved.get("settings") or {})}
        b, info = saved.get("base") or RunConfig().to_dict(), saved.get("data_info") or {}
        try:
            plan_text = plan_markdown(space.confine_config_paths(build_config(now, b)), lang)
        except StudioError as e:  # a file gone since, say: the plan says why
            now, plan_text = {**now}, error_text(e, lang)
        return {**settings_update(now), base: b, data_info: info, data_md: text_of(data_line(b, info), lang),
                plan_md: plan_text, history: history_frame(lang),
                loss_plot: gr.LinePlot(plots.initial_frames(lang)["loss"], color_map=plots.loss_color_map(lang),
                                       **plots.titles("loss", lang)),
                **{live[k]: gr.LinePlot(**plots.titles(k, lang)) for k in ("lr", "grad", "speed", "memory")}}

    ctx.on_restore(restore, [*settings, base, data_info, data_md, plan_md, history, loss_plot,
                             *(live[k] for k in ("lr", "grad", "speed", "memory"))])

    def remember(values: dict, request: gr.Request):
        workspace.save(session_of(request), train={"settings": named(values), "base": values[base],
                                                   "data_info": values[data_info]})

    gr.on([c.change for c in (*settings, base, data_info)], remember, {*settings, base, data_info}, None,
          trigger_mode="always_last", show_progress="hidden")

    def on_run_key(key, request: gr.Request):
        state = (key or [None])[0]
        updates = buttons(state[1] if state else None)
        if state and state[1] in FINAL_STATES:  # "Stopping..." never outlives the stop
            updates[status_md] = text(f"train.state.{state[1]}", lang_of(request))
        updates[history] = history_frame(lang_of(request))
        updates[past_run] = gr.Dropdown(choices=runs.run_names())
        return updates

    run_key.change(on_run_key, run_key, [start_btn, stop_btn, resume_btn, history, past_run, status_md], show_progress="hidden",
                   concurrency_limit=None)

    # ---- history
    def on_past_run(name, request: gr.Request):
        rd = runs.run_dir_of(name)
        if not rd:
            return {status_md: gr.skip()}  # nothing to change (an empty dict is one value)
        out = open_run(rd, lang_of(request))
        return {**live_update(out), status_md: out["status"], ctx.run: out["run"], view: {"run_dir": rd}}

    past_run.input(on_past_run, past_run, [*live.values(), status_md, ctx.run, view])

    def on_follow(request: gr.Request):
        lang = lang_of(request)
        job = current_job()
        out = live_view(job.snapshot() if job else None, job.cfg if job else None, lang)
        return {**live_update(out), view: {}, seen: {}, past_run: None}

    follow_btn.click(on_follow, None, [*live.values(), view, seen, past_run])

    def on_refresh(request: gr.Request):
        return {history: history_frame(lang_of(request)), past_run: gr.Dropdown(choices=runs.run_names())}

    refresh_btn.click(on_refresh, None, [history, past_run])

    return {"start": start_btn, "stop": stop_btn, "progress": progress, "loss": loss_plot, "history": history,
            "settings": dict(zip(SETTING_NAMES, settings)), "base": base}
