"""The Model tab: pick a base model, see whether training it fits this machine, and what to change if not.

The handlers are plain functions over a plain settings dict (SETTING_NAMES) that return plain values:
`evaluate(settings, lang, hw)` gives the verdict, the breakdown figure, the recommendations and the
dict the Train tab reads from `ctx.model`; `apply_change(settings, change)` applies a recommendation.
`build(ctx)` only maps them to components, so the tests drive the tab without a browser.

Everything here is arithmetic on the model's config (studio.memory, about a millisecond per estimate),
so the verdict follows every control as it moves. Nothing is downloaded or loaded; a Hub id costs one
config.json fetch, remembered for the session.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import hardware, memory, workspace
from studio.config import RunConfig
from studio.data.language import data_chinese_share, language_advice
from studio.errors import StudioError, error_text
from studio.messages import Msg
from studio.units import count_text
from studio.models import catalog
from studio.models.loading import needs_remote_code
from studio.plan import RunPlan, plan, target_hardware
from studio.plan import largest_model as largest_fitting
from studio.space import check_model_name
from studio.policy import remote_code_refusal, safe_mode
from studio.ui.i18n import lang_of, t, text
from studio.ui.workspace import session_of

GiB = memory.GiB
MAX_RECS = 7  # recommendation buttons: the engine proposes at most ~8, some are left out here
TARGETS = ("auto", "8", "12", "16", "24", "40", "48", "80")
# The method control's values -> (RunConfig method, quant_bits)
METHOD_VALUES = {"full": ("full", 4), "lora": ("lora", 4), "qlora4": ("qlora", 4), "qlora8": ("qlora", 8)}
RANKS = (4, 8, 16, 32, 64, 128)
SETTING_NAMES = ("model", "target", "method", "precision", "batch_size", "grad_accum", "max_length",
                 "gradient_checkpointing", "lora_rank", "optimizer")
# Keys of a memory.Recommendation.change this tab can apply and the engine can train with. The 8-bit
# optimizers (bitsandbytes) run on CUDA only: offered only when the estimate is for an NVIDIA GPU.
APPLICABLE = {"model", "gradient_checkpointing", "batch_size", "grad_accum", "seq_len", "method", "quant_bits",
              "optimizer"}
# The optimizer control's choices (studio.config.OPTIMIZERS less SGD, which a beginner never needs here).
OPTIMIZER_CHOICES = ("adamw", "adamw_8bit", "paged_adamw_8bit")

# ---- strings -------------------------------------------------------------------------------------


TITLE = t("model.tab")


# ---- settings ------------------------------------------------------------------------------------

def default_settings() -> dict:
    """The tab's starting values: the same defaults as a fresh RunConfig, so both tabs agree."""
    d = RunConfig()
    return {"model": d.model.name, "target": "auto", "method": d.method.method, "precision": d.training.precision,
            "batch_size": d.training.batch_size, "grad_accum": d.training.grad_accum,
            "max_length": d.training.max_length, "gradient_checkpointing": d.training.gradient_checkpointing,
            "lora_rank": d.method.lora_rank, "optimizer": d.training.optimizer}


def _whole(v):
    """A whole number from a control (Number gives floats, Radio may give strings); anything else is passed on
    as is, so the engine names the problem in its own sentence."""
    if isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return v
    return v


def normalise(settings: dict) -> dict:
    s = default_settings()
    s.update({k: v for k, v in (settings or {}).items() if k in SETTING_NAMES})
    s["model"] = str(s["model"] or "").strip()
    s["target"] = str(s["target"] or "auto")
    for k in ("batch_size", "grad_accum", "max_length", "lora_rank"):
        s[k] = _whole(s[k])
    gc = s["gradient_checkpointing"]
    s["gradient_checkpointing"] = ("on" if gc else "off") if isinstance(gc, bool) else str(gc or "auto").lower()
    s["optimizer"] = str(s["optimizer"] or "adamw").lower()
    return s


# ---- the model -----------------------------------------------------------------------------------

_HUB_CACHE: dict[str, tuple[float, object]] = {}  # Hub id -> (time, (dims, source) or StudioError)
_HUB_ERROR_TTL = 60.0  # seconds a failed fetch is remembered, so moving a slider does not refetch offline


def resolve_model(name: str) -> tuple[memory.ModelDims, str, catalog.CatalogEntry | None]:
    """(dims, source, catalog entry or None) for a catalog id, a local folder or a Hub id."""
    name = str(name or "").strip()
    entry = catalog.find(name) if name else None
    if entry is not None:
        return entry.dims, f"catalog: {entry.id}", entry
    p = Path(name).expanduser()
    if not name or p.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        dims, source = catalog.resolve_dims(name)  # folders are read every time: they may change
        return dims, source, None
    hit = _HUB_CACHE.get(name)
    if hit is None or (isinstance(hit[1], StudioError) and time.monotonic() - hit[0] > _HUB_ERROR_TTL):
        try:
            value = catalog.resolve_dims(name)
        except StudioError as e:
            value = e
        _HUB_CACHE[name] = hit = (time.monotonic(), value)
    if isinstance(hit[1], StudioError):
        raise hit[1]
    dims, source = hit[1]
    return dims, source, None


def _chat_template(folder: Path) -> bool | None:
    """Whether a model folder ships a chat template (None when it cannot tell)."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tc = folder / "tokenizer_config.json"
    if not tc.is_file():
        return None
    try:
        return bool(json.loads(tc.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return None


def model_notes(name: str, dims: memory.ModelDims, source: str, entry, lang: str = "en") -> str:
    """What the person should know about this model: language, licence, size, base vs instruct, remote code."""
    if entry is not None:
        lines = [f"**{entry.hub_id}** · {entry.size_label} · {text('model.kind.' + entry.kind, lang)} · "
                 f"{text('list.separator', lang).join(entry.languages)} · {entry.licence}",
                 entry.notes(lang),
                 text("model.kind_note", lang, kind=text("model.kind." + entry.kind, lang), note=entry.kind_note(lang))]
        if entry.needs_remote_code:
            lines.append(_remote_code_note(lang))
        if entry.gated:
            lines.append(text("model.gated", lang))
        return "\n\n".join(lines)
    folder = source.startswith("folder:")
    lines = [text("model.custom_line", lang, name=name, params=count_text(dims.param_count), arch=dims.model_type,
                  source=text("model.source.folder" if folder else "model.source.hub", lang))]
    has_template = _chat_template(Path(name).expanduser()) if folder else None
    lines.append(text({True: "model.template_yes", False: "model.template_no", None: "model.template_unknown"}[has_template],
                      lang))
    if needs_remote_code(name):
        lines.append(_remote_code_note(lang))
    return "\n\n".join(lines)


def _remote_code_note(lang: str) -> str:
    return text("model.remote_code_allowed" if safe_mode().allow_remote_code else "model.remote_code", lang)


def catalog_frame(query: str = "", lang: str = "en") -> pd.DataFrame:
    """The catalog as a table, filtered by `query` (every word must match; see catalog.search)."""
    cols = [text(f"model.col.{c}", lang) for c in ("id", "size", "kind", "languages", "licence", "remote")]
    rows = [[e.id, e.size_label, text(f"catalog.kind.{e.kind}", lang),
             text("list.separator", lang).join(e.languages), e.licence, text("model.yes" if e.needs_remote_code else "model.no", lang)]
            for e in catalog.search(query or "")]
    return pd.DataFrame(rows, columns=cols)


def row_model(query: str, index, value=None) -> str:
    """The catalog id of a clicked table cell. The row is looked up again on the server from the search words:
    the browser's own row data can lag behind the table it shows while search results arrive."""
    if isinstance(value, str) and catalog.find(value) is not None:
        return catalog.find(value).id
    try:
        row = int(index[0] if isinstance(index, (list, tuple)) else index)
    except (TypeError, ValueError):
        return ""
    entries = catalog.search(query or "")
    return entries[row].id if 0 <= row < len(entries) else ""


def catalog_choices() -> list[tuple[str, str]]:
    return [(e.label("en"), e.id) for e in catalog.load()]


# ---- the plan ------------------------------------------------------------------------------------

def hardware_md(hw: dict, lang: str = "en") -> str:
    return text("model.hw", lang, summary=hardware.summary_line(hw, lang))


def settings_config(s: dict, base: dict | None = None) -> RunConfig:
    """The run these settings describe: the Train tab's config (stage, data) with this tab's choices."""
    method, bits = METHOD_VALUES.get(s["method"], (None, 4))
    if method is None:
        raise StudioError("model.error.method", value=str(s["method"]))
    if s["gradient_checkpointing"] not in ("auto", "on", "off"):
        raise StudioError("model.error.gc")
    cfg = RunConfig.from_dict(base) if base else RunConfig()
    cfg.model.name = s["model"]
    cfg.method.method, cfg.method.quant_bits, cfg.method.lora_rank = method, bits, s["lora_rank"]
    t = cfg.training
    t.precision, t.batch_size, t.grad_accum, t.max_length = s["precision"], s["batch_size"], s["grad_accum"], s["max_length"]
    t.gradient_checkpointing, t.optimizer = s["gradient_checkpointing"], s["optimizer"]
    return cfg


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def verdict_md(p: RunPlan, lang: str = "en") -> str:
    cap = p.capacity_bytes or 0
    where = p.where.text(lang)
    lines = [text(f"model.verdict.{p.verdict}", lang, need=_gib(p.total_bytes), have=_gib(cap),
                  usable=_gib(cap * memory.FIT_SHARE), where=where)]
    if p.trainable_params:
        share = p.trainable_params / max(1, p.total_params)
        lines.append(text("model.trainable", lang, trainable=count_text(p.trainable_params),
                          total=count_text(p.total_params), share=f"{100 * share:.2f}%" if share < 0.1 else f"{100 * share:.0f}%"))
    lines.append(text("model.precision_line", lang, weights=p.weights.upper(), precision=p.precision.upper()))
    lines.append(p.gc_reason.text(lang))
    lines += [f"ℹ️ {n.text(lang)}" for n in p.notes]
    return "\n\n".join(lines)


def components_md(p: RunPlan, lang: str = "en") -> str:
    """Each part of the bar with its size and one plain sentence on what it is."""
    return "\n".join(text("model.part.line", lang, label=memory.part_name(key, lang), size=memory.format_bytes(value),
                          explain=text(f"model.part.{key}", lang))
                     for key, value in p.estimate.breakdown.items() if value > 0)


def change_settings(s: dict, change: dict) -> dict:
    """The tab's settings after a planned change (memory.estimate keywords, or model: a catalog id)."""
    new = dict(s)
    renames = {"seq_len": "max_length"}
    for key, value in change.items():
        if key == "gradient_checkpointing":
            new[key] = "on" if value else "off"
        elif key in ("method", "quant_bits"):
            method, bits = METHOD_VALUES.get(new["method"], ("lora", 4))
            method, bits = change.get("method", method), int(change.get("quant_bits", bits))
            new["method"] = ("qlora4" if bits == 4 else "qlora8") if method == "qlora" else method
        else:
            new[renames.get(key, key)] = value
    return normalise(new)


def recommendations(p: RunPlan, lang: str = "en") -> list[dict]:
    """The plan's changes this tab can apply: [{"text", "change", "verdict", "total_bytes"}]."""
    out = []
    for r in p.recommendations:
        change = {k: v for k, v in r.change.items() if k in APPLICABLE}
        if not change or any(change == o["change"] for o in out):
            continue
        line = f"{r.message.text(lang)} ({r.cost.text(lang)})" + _login_note(change.get("model"), lang)
        out.append({"text": line, "change": change, "verdict": r.verdict, "total_bytes": r.total_bytes})
    return out[:MAX_RECS]


def _login_note(model_id: str | None, lang: str) -> str:
    """A proposed model that is gated on the Hub is never proposed without saying it needs a login."""
    entry = catalog.find(model_id) if model_id else None
    return text("model.gated_short", lang) if entry is not None and entry.gated else ""


def largest_model(cfg: RunConfig, p: RunPlan, lang: str = "en") -> dict:
    """The catalog model with the most parameters that fits with this method and setup: {"id", "md"}."""
    where = p.where.text(lang)
    found = largest_fitting(cfg, p)
    if found is None:
        return {"id": "", "md": text("model.largest_none", lang, where=where)}
    entry, e = found
    md = text("model.largest", lang, where=where, id=entry.id, size=entry.size_label, gib=_gib(e.total_bytes)) \
        + _login_note(entry.id, lang)
    current = catalog.find(cfg.model.name)
    if current is not None and current.hub_id == entry.hub_id:  # "embedded" is SmolLM2-135M-Instruct too
        return {"id": "", "md": md + text("model.largest_is_this", lang)}
    return {"id": entry.id, "md": md}


def model_context(s: dict, p: RunPlan | None) -> dict:
    """What the Train tab reads from ctx.model (see studio/ui/context.py)."""
    method, bits = METHOD_VALUES.get(s["method"], ("lora", 4))
    gc = {"on": True, "off": False}.get(s["gradient_checkpointing"], "auto")
    return {"name": s["model"], "method": method, "precision": s["precision"], "batch_size": s["batch_size"],
            "grad_accum": s["grad_accum"], "max_length": s["max_length"], "gradient_checkpointing": gc,
            "lora_rank": s["lora_rank"], "target_modules": "all-linear", "quant_bits": bits,
            "optimizer": s["optimizer"], "target": s["target"],
            "verdict": p.verdict if p else None, "estimate_bytes": p.total_bytes if p else None,
            # The Train tab asks for trust_remote_code only for a model that needs it; starting refuses it
            # unless the server allows it (studio.policy.check_remote_code).
            "needs_remote_code": needs_remote_code(s["model"])}


def language_md(model: str, data: dict | None, lang: str = "en") -> str:
    """A line under the verdict when the data chosen in the Data tab (ctx.data) is mostly Chinese and this
    model's catalog entry does not list Chinese, naming one that does (studio.data.language), or ''."""
    if not data:
        return ""
    advice = language_advice(data_chinese_share(data), model)
    return f"⚠️ {advice.text(lang)}" if advice else ""


def evaluate(settings: dict, lang: str = "en", hw: dict | None = None, base: dict | None = None,
             data: dict | None = None) -> dict:
    """Everything the tab shows for these settings. Keys: ok, settings, hardware_md, language_md, plan, and either
    error (one plain sentence) or verdict, verdict_md, figure, components_md, notes_md, recommendations, recs_md,
    largest, model_ctx. `base`: the Train tab's config (stage and data), so both tabs plan the same run; `data`:
    the data chosen in the Data tab (ctx.data), for the language line."""
    s = normalise(settings)
    hw = hardware.detect() if hw is None else hw
    out: dict = {"ok": False, "settings": s, "hardware_md": hardware_md(hw, lang),
                 "language_md": language_md(s["model"], data, lang)}
    try:
        check_model_name(s["model"])  # on a public Space: no folder outside the app's own (studio.paths.confine)
        dims, source, entry = resolve_model(s["model"])
        cfg = settings_config(s, base)
        p = plan(cfg, target_hardware(s["target"], hw), with_duration=False)
        if p.error is not None:
            raise p.error
        if cfg.method.method == "qlora" and s["target"] != "auto" and not hw.get("cuda"):
            p.notes.append(Msg("model.qlora_target_only"))
    except StudioError as e:
        out.update(error=error_text(e, lang), verdict_md=text("model.error", lang, error=error_text(e, lang)))
        return out
    recs = recommendations(p, lang)
    if p.verdict == "fits":
        recs_md = text("model.recs_none", lang)
    elif recs:
        recs_md = text("model.recs_help", lang)
    else:
        recs_md = text("model.recs_empty", lang)
    recs_md = text("model.recs_title", lang) + "\n\n" + recs_md
    title = text("model.peak", lang, gib=f"{p.total_bytes / GiB:.1f}", verdict=memory.verdict_word(p.verdict, lang))
    out.update(ok=True, plan=p, estimate=p.estimate, verdict=p.verdict, verdict_md=verdict_md(p, lang),
               figure=memory.breakdown_figure(p.estimate, lang, title=title), components_md=components_md(p, lang),
               notes_md=model_notes(s["model"], dims, source, entry, lang), recommendations=recs, recs_md=recs_md,
               largest=largest_model(cfg, p, lang), model_ctx=model_context(s, p))
    return out


def use_message(res: dict, lang: str = "en") -> str:
    if not res["ok"]:
        return res["verdict_md"]
    m = res["model_ctx"]
    if m.get("needs_remote_code") and not safe_mode().allow_remote_code:
        return "⛔ " + remote_code_refusal(m["name"]).text(lang)
    method = text("model.method." + {"full": "full", "lora": "lora"}.get(m["method"], f"qlora{m['quant_bits']}"), lang)
    return text("model.used", lang, name=m["name"], method=method, batch=m["batch_size"], length=m["max_length"],
                verdict=memory.verdict_word(m["verdict"], lang))


# ---- the tab -------------------------------------------------------------------------------------

def build(ctx) -> dict:
    # detect() imports torch (seconds, once): start it now so the first page load does not wait for it.
    threading.Thread(target=hardware.detect, daemon=True).start()
    d = default_settings()
    recs_state = gr.State([])  # the change dicts behind the recommendation buttons
    largest_state = gr.State("")

    gr.Markdown(t("model.pick"))
    with gr.Row(equal_height=True):
        model_dd = gr.Dropdown(catalog_choices(), value=d["model"], allow_custom_value=True, filterable=True, scale=3,
                               label=t("model.model"), info=t("model.model.info"), elem_id="model-name")
        custom = gr.Textbox(label=t("model.custom"), placeholder=t("model.custom.ph"), submit_btn=True, scale=2,
                            elem_id="model-custom")
    with gr.Accordion(t("model.browse"), open=False, elem_id="model-browse"):
        search = gr.Textbox(label=t("model.search"), placeholder=t("model.search.ph"), elem_id="model-search")
        table = gr.Dataframe(catalog_frame(), interactive=False, wrap=True, max_height=360, elem_id="model-catalog",
                             column_widths=["22%", "8%", "10%", "24%", "26%", "10%"])

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=380):
            notes_md = gr.Markdown(elem_id="model-notes")
            hw_md = gr.Markdown(elem_id="model-hardware")
            gr.Markdown(t("model.setup"))
            target = gr.Dropdown([(t(f"model.target.{k}"), k) for k in TARGETS], value="auto",
                                 label=t("model.target"), info=t("model.target.info"), elem_id="model-target")
            method = gr.Radio([(t(f"model.method.{k}"), k) for k in METHOD_VALUES], value=d["method"],
                              label=t("model.method"), info=t("help.MethodConfig.method"), elem_id="model-method")
            precision = gr.Radio([(t("model.precision.auto"), "auto"), ("BF16", "bf16"), ("FP16", "fp16"), ("FP32", "fp32")],
                                 value=d["precision"], label=t("model.precision"), info=t("help.TrainingConfig.precision"),
                                 elem_id="model-precision")
            with gr.Row():
                # No minimum on purpose: a bad value gets the engine's sentence in the verdict, not a silent clamp.
                batch = gr.Number(d["batch_size"], precision=0, label=t("model.batch_size"),
                                  info=t("help.TrainingConfig.batch_size"), elem_id="model-batch")
                accum = gr.Number(d["grad_accum"], precision=0, label=t("model.grad_accum"),
                                  info=t("help.TrainingConfig.grad_accum"), elem_id="model-accum")
            max_length = gr.Number(d["max_length"], precision=0, label=t("model.max_length"),
                                   info=t("help.TrainingConfig.max_length"), elem_id="model-length")
            gc = gr.Radio([(t(f"model.gc.{k}"), k) for k in ("auto", "on", "off")], value=d["gradient_checkpointing"],
                          label=t("model.gc"), info=t("help.TrainingConfig.gradient_checkpointing"), elem_id="model-gc")
            rank = gr.Radio(list(RANKS), value=d["lora_rank"], label=t("model.lora_rank"),
                            info=t("help.MethodConfig.lora_rank"), elem_id="model-rank")
            optimizer = gr.Radio([(t(f"model.optimizer.{k}"), k) for k in OPTIMIZER_CHOICES], value=d["optimizer"],
                                 label=t("model.optimizer"), info=t("help.TrainingConfig.optimizer"), elem_id="model-optimizer")
            use_btn = gr.Button(t("model.use"), variant="primary", elem_id="model-use")
            use_md = gr.Markdown(elem_id="model-used")

        with gr.Column(scale=3, min_width=480):
            verdict = gr.Markdown(elem_id="model-verdict")
            lang_md = gr.Markdown(elem_id="model-language")
            plot = gr.Plot(show_label=False, elem_id="model-plot")
            recs_md = gr.Markdown(elem_id="model-recs")
            rec_btns = [gr.Button(visible=False, size="sm", elem_id=f"model-rec-{i}") for i in range(MAX_RECS)]
            largest_md = gr.Markdown(elem_id="model-largest")
            largest_btn = gr.Button(t("model.pick_largest"), visible=False, size="sm", elem_id="model-largest-btn")
            with gr.Accordion(t("model.explain_title"), open=True, elem_id="model-explain"):
                parts_md = gr.Markdown(elem_id="model-parts")
                gr.Markdown(t("model.explain"))

    controls = [model_dd, target, method, precision, batch, accum, max_length, gc, rank, optimizer]

    def settings_of(values) -> dict:
        return dict(zip(SETTING_NAMES, values))

    def view(res: dict) -> dict:
        out = {verdict: res["verdict_md"], hw_md: res["hardware_md"], lang_md: res["language_md"]}
        if not res["ok"]:
            out.update({plot: gr.Plot(value=None, visible=False), recs_md: "", recs_state: [], largest_md: "", largest_state: "",
                        largest_btn: gr.Button(visible=False), parts_md: "", notes_md: ""})
            out.update({b: gr.Button(visible=False) for b in rec_btns})
            return out  # ctx.model keeps the last choice that worked
        recs = res["recommendations"]
        out.update({plot: gr.Plot(value=res["figure"], visible=True), recs_md: res["recs_md"], recs_state: [r["change"] for r in recs],
                    largest_md: res["largest"]["md"], largest_state: res["largest"]["id"],
                    largest_btn: gr.Button(visible=bool(res["largest"]["id"])), parts_md: res["components_md"],
                    notes_md: res["notes_md"], ctx.model: res["model_ctx"]})
        for i, b in enumerate(rec_btns):
            out[b] = gr.Button(recs[i]["text"], visible=True) if i < len(recs) else gr.Button(visible=False)
        return out

    outputs = [verdict, lang_md, hw_md, plot, recs_md, recs_state, largest_md, largest_state, largest_btn, parts_md, notes_md,
               ctx.model, *rec_btns]

    def on_change(model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v,
                  data, request: gr.Request):
        s = settings_of((model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v))
        return view(evaluate(s, lang_of(request), data=data))

    # On every change of any control or of the data chosen in the Data tab (an estimate takes about a
    # millisecond); the page's first view is restore's.
    gr.on([*(c.change for c in controls), ctx.data.change], on_change, [*controls, ctx.data], outputs,
          trigger_mode="always_last", show_progress="hidden")

    def restore(ws: dict, lang: str, session: str) -> dict:
        """The page opens: this browser's last settings (its workspace), and their verdict."""
        s = normalise(ws.get("model") or {})
        if not s["model"]:
            s["model"] = default_settings()["model"]
        return {**{c: s[n] for n, c in zip(SETTING_NAMES, controls)}, **view(evaluate(s, lang, data=ws.get("data")))}

    ctx.on_restore(restore, [*controls, *outputs])

    def remember(model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v,
                 request: gr.Request):
        values = (model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v)
        workspace.save(session_of(request), model=normalise(settings_of(values)))

    gr.on([c.change for c in controls], remember, controls, None, trigger_mode="always_last", show_progress="hidden")

    def on_search(q, request: gr.Request):
        return catalog_frame(q, lang_of(request))

    # On page load (headers in the browser's language) and on every change of the search words.
    gr.on(None, on_search, [search], table, trigger_mode="always_last", show_progress="hidden")

    def on_row(query, evt: gr.SelectData):
        return row_model(query, evt.index, evt.value) or gr.skip()

    table.select(on_row, search, model_dd)

    def on_custom(value):
        value = (value or "").strip()
        return value or gr.skip()

    custom.submit(on_custom, custom, model_dd)

    def make_apply(i: int):
        def apply(changes, *values):
            if i >= len(changes):
                return {}
            new = change_settings(normalise(settings_of(values)), changes[i])
            return {c: new[n] for n, c in zip(SETTING_NAMES, controls)}
        return apply

    for i, b in enumerate(rec_btns):
        b.click(make_apply(i), [recs_state, *controls], controls)

    largest_btn.click(lambda mid: mid or gr.skip(), largest_state, model_dd)

    def on_use(model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v,
               request: gr.Request):
        lang = lang_of(request)
        res = evaluate(settings_of((model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v,
                                    optimizer_v)), lang)
        out = {use_md: use_message(res, lang)}
        if res["ok"]:
            out[ctx.model] = res["model_ctx"]
        return out

    use_btn.click(on_use, controls, [use_md, ctx.model])

    return {"model": model_dd, "target": target, "method": method, "precision": precision, "batch_size": batch,
            "grad_accum": accum, "max_length": max_length, "gradient_checkpointing": gc, "lora_rank": rank,
            "optimizer": optimizer, "verdict": verdict, "plot": plot, "recommendations": rec_btns, "use": use_btn}
