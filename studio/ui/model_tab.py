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

import functools
import importlib.util
import json
import threading
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import hardware, memory
from studio.config import EIGHT_BIT_OPTIMIZERS, RunConfig
from studio.errors import StudioError, error_text
from studio.models import catalog
from studio.models.loading import needs_remote_code
from studio.space import check_model_name, remote_code_refusal, safe_mode
from studio.ui.i18n import lang_of, t, text

GiB = memory.GiB
MAX_RECS = 7  # recommendation buttons: the engine proposes at most ~8, some are left out here
QLORA_DEFAULT_GPU = 24  # GiB: what a QLoRA estimate is shown for on a machine without CUDA, unless one is chosen
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


def apply_change(settings: dict, change: dict) -> dict:
    """The settings after a recommendation's `change` (keyword arguments of memory.estimate, plus `model`)."""
    s = normalise(settings)
    if "model" in change:
        s["model"] = change["model"]
    if "gradient_checkpointing" in change:
        s["gradient_checkpointing"] = "on" if change["gradient_checkpointing"] else "off"
    if "batch_size" in change:
        s["batch_size"] = int(change["batch_size"])
    if "grad_accum" in change:
        s["grad_accum"] = int(change["grad_accum"])
    if "seq_len" in change:
        s["max_length"] = int(change["seq_len"])
    if "lora_rank" in change:
        s["lora_rank"] = int(change["lora_rank"])
    if "precision" in change:
        s["precision"] = change["precision"]
    if "optimizer" in change:
        s["optimizer"] = change["optimizer"]
    if "method" in change or "quant_bits" in change:
        method, bits = METHOD_VALUES.get(s["method"], ("lora", 4))
        method, bits = change.get("method", method), int(change.get("quant_bits", bits))
        s["method"] = ("qlora4" if bits == 4 else "qlora8") if method == "qlora" else method
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


def _human_count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}".replace(f".0{unit}", unit)
    return f"{int(n)}"


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
    zh = lang == "zh"
    if entry is not None:
        lines = [f"**{entry.hub_id}** · {entry.size_label} · {text('model.kind.' + entry.kind, lang)} · "
                 f"{', '.join(entry.languages)} · {entry.licence}",
                 entry.notes_zh if zh else entry.notes]
        kind_note = entry.kind_note_zh if zh else entry.kind_note
        if kind_note:
            lines.append(f"*{text('model.kind.' + entry.kind, lang)}*: {kind_note}")
        if entry.needs_remote_code:
            lines.append(_remote_code_note(lang))
        if "gated" in entry.licence.lower():
            lines.append(text("model.gated", lang))
        return "\n\n".join(lines)
    folder = source.startswith("folder:")
    lines = [text("model.custom_line", lang, name=name, params=_human_count(dims.param_count), arch=dims.model_type,
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
    rows = [[e.id, e.size_label, text(f"model.kind.{e.kind}", lang).split(" (")[0].split("（")[0],
             ", ".join(e.languages), e.licence, text("model.yes" if e.needs_remote_code else "model.no", lang)]
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


# ---- the estimate --------------------------------------------------------------------------------

def hardware_md(hw: dict, lang: str = "en") -> str:
    return text("model.hw", lang, summary=hardware.summary_line(hw, lang))


def placement(target: str, method: str, precision: str, hw: dict, lang: str = "en") -> dict:
    """Where the estimate is checked: {"device", "capacity", "where", "where_in" (two phrasings of the device),
    "precision" (for the estimate), "notes"}."""
    notes: list[str] = []
    has_cuda = bool(hw.get("cuda"))
    if target in ("", "auto", None):
        device = hardware.default_device(hw)
        if method == "qlora" and device != "cuda":
            notes.append(text("model.qlora_no_cuda", lang, gib=QLORA_DEFAULT_GPU))
            device, capacity = "cuda", QLORA_DEFAULT_GPU * GiB
            where = text("model.where.gpu_size", lang, gib=QLORA_DEFAULT_GPU)
            where_in = text("model.in.gpu_size", lang, gib=QLORA_DEFAULT_GPU)
        else:
            capacity = hardware.capacity_bytes(hw, device)
            if device == "cuda":
                where = text("model.where.gpu", lang, name=hw["gpus"][0]["name"])
            else:
                where = text(f"model.where.{device}", lang)
            where_in = text("model.in." + ("gpu" if device == "cuda" else device), lang)
        gpu_bf16 = bool(hw.get("gpus") and hw["gpus"][0].get("bf16"))
    else:
        try:
            gib = float(target)
        except ValueError:
            raise StudioError(f"'{target}' is not a memory size; choose this machine or a GPU size.",
                              f"“{target}”不是内存大小；请选择“这台机器”或一个 GPU 显存大小。") from None
        device, capacity = "cuda", int(gib * GiB)
        where = text("model.where.gpu_size", lang, gib=f"{gib:g}")
        where_in = text("model.in.gpu_size", lang, gib=f"{gib:g}")
        gpu_bf16 = True  # the cards offered are Ampere or newer, except T4/V100 (fp16): bf16 and fp16 cost the same
        if method == "qlora" and not has_cuda:
            notes.append(text("model.qlora_target_only", lang))
    prec = str(precision or "auto").lower()
    if prec == "fp16" and device != "cuda":
        notes.append(text("model.fp16_no_cuda", lang))
    if device == "cuda":
        est_prec = ("bf16" if gpu_bf16 else "fp16") if prec == "auto" else prec
    else:
        # studio.engine.device loads the weights in fp32 on a CPU or MPS (bf16 only as autocast), and the
        # estimator has no "fp32 weights with 16-bit compute" for LoRA: count fp32, the safe side.
        est_prec = "fp32"
        if prec in ("bf16", "fp16"):
            notes.append(text("model.cpu_weights", lang))
    return {"device": device, "capacity": capacity, "where": where, "where_in": where_in, "precision": est_prec,
            "notes": notes}


def estimate(dims: memory.ModelDims, s: dict, hw: dict, lang: str = "en") -> tuple[memory.Estimate, dict]:
    """The estimate for these settings, with gradient checkpointing 'auto' resolved as the engine does
    (on only when the run does not fit without it). Returns (estimate, placement + {"gc_on", "gc_auto"})."""
    if s["method"] not in METHOD_VALUES:
        raise StudioError(f"Unknown method '{s['method']}'. Choose full, LoRA, QLoRA 4-bit or QLoRA 8-bit.",
                          f"未知的方法“{s['method']}”。请选择全量微调、LoRA、QLoRA 4 位或 QLoRA 8 位。")
    method, bits = METHOD_VALUES[s["method"]]
    pl = placement(s["target"], method, s["precision"], hw, lang)
    kw = dict(batch_size=s["batch_size"], seq_len=s["max_length"], grad_accum=s["grad_accum"],
              precision=pl["precision"], lora_rank=s["lora_rank"], target_modules="all-linear", quant_bits=bits,
              optimizer=s["optimizer"], device=pl["device"], capacity_bytes=pl["capacity"], loss=memory.engine_loss())
    if s["optimizer"] in EIGHT_BIT_OPTIMIZERS and not hw.get("cuda"):
        pl["notes"].append(text("model.optim_no_cuda", lang))
    gc = s["gradient_checkpointing"]
    if gc not in ("auto", "on", "off"):
        raise StudioError("Gradient checkpointing must be auto, on or off.", "梯度检查点必须是 auto、on 或 off。")
    if gc == "auto":
        est = memory.estimate(dims, method, gradient_checkpointing=False, **kw)
        gc_on = bool(pl["capacity"]) and est.total_bytes > memory.FIT_SHARE * pl["capacity"]
        if gc_on:
            est = memory.estimate(dims, method, gradient_checkpointing=True, **kw)
    else:
        gc_on = gc == "on"
        est = memory.estimate(dims, method, gradient_checkpointing=gc_on, **kw)
    return est, {**pl, "gc_on": gc_on, "gc_auto": gc == "auto"}


@functools.lru_cache(maxsize=1)
def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def verdict_md(est: memory.Estimate, info: dict, lang: str = "en") -> str:
    cap = est.capacity_bytes or 0
    lines = [text(f"model.verdict.{est.verdict}", lang, need=_gib(est.total_bytes), have=_gib(cap),
                  usable=_gib(cap * memory.FIT_SHARE), where=info["where"])]
    if est.trainable_params:
        share = est.trainable_params / max(1, est.param_count)
        lines.append(text("model.trainable", lang, trainable=_human_count(est.trainable_params),
                          total=_human_count(est.param_count), share=f"{100 * share:.2f}%" if share < 0.1 else f"{100 * share:.0f}%"))
    if info.get("gc_auto"):
        lines.append(text("model.gc_auto_on" if info["gc_on"] else "model.gc_auto_off", lang))
    lines += [f"ℹ️ {n}" for n in info.get("notes", [])]
    return "\n\n".join(lines)


def components_md(est: memory.Estimate, lang: str = "en") -> str:
    """Each part of the bar with its size and one plain sentence on what it is."""
    zh = lang == "zh"
    lines = []
    for key, value in est.breakdown.items():
        if value <= 0:
            continue
        lines.append(text("model.part.line", lang, label=memory.BREAKDOWN_LABELS[key][1 if zh else 0],
                          size=memory.format_bytes(value), explain=text(f"model.part.{key}", lang)))
    return "\n".join(lines)


def _rec_kind(change: dict, settings: dict) -> str:
    kinds = []
    if "model" in change:
        kinds.append("model")
    if "gradient_checkpointing" in change:
        kinds.append("gc")
    if "batch_size" in change or "grad_accum" in change:
        kinds.append("batch")
    if "seq_len" in change:
        kinds.append("seq")
    if "optimizer" in change:
        kinds.append("optim")
    if change.get("method") == "lora":
        kinds.append("lora")
    elif change.get("method") == "qlora":
        kinds.append("qlora")
    elif "quant_bits" in change:
        kinds.append("bits4")
    return kinds[0] if len(kinds) == 1 else "all"


def recommendations(dims: memory.ModelDims, est: memory.Estimate, s: dict, hw: dict, lang: str = "en") -> list[dict]:
    """The engine's recommendations this tab can apply, cheapest first, each re-estimated exactly as applying
    it will show: [{"text", "change", "verdict", "total_bytes"}]. A change that moves the check to another
    device (QLoRA on a machine without CUDA is shown for a GPU) is left out: it would not make it fit here."""
    out: list[dict] = []
    seen: list[dict] = []
    for r in memory.recommendations(dims, est, catalog_models=catalog.load()):
        change = {k: v for k, v in r.change.items() if k in APPLICABLE}
        if not change or change in seen:
            continue
        seen.append(change)
        new_s = apply_change(s, change)
        try:
            new_dims = resolve_model(new_s["model"])[0] if "model" in change else dims
            new, _ = estimate(new_dims, new_s, hw, lang)
        except StudioError:
            continue
        if new.device != est.device or new.capacity_bytes != est.capacity_bytes or new.total_bytes >= est.total_bytes:
            continue
        kind = _rec_kind(change, s)
        label = text(f"model.rec.{kind}", lang, n=change.get("grad_accum", ""), old=s["max_length"],
                     new=change.get("seq_len", ""), id=change.get("model", ""))
        line = text("model.rec.line", lang, label=label, old=_gib(est.total_bytes), new=_gib(new.total_bytes),
                    verdict=text(f"model.verdict.word.{new.verdict}", lang))
        out.append({"text": f"{line} ({text(f'model.cost.{kind}', lang)})", "change": change,
                    "verdict": new.verdict, "total_bytes": new.total_bytes})
    return out[:MAX_RECS]


def largest_model(est: memory.Estimate, s: dict, info: dict, lang: str = "en") -> dict:
    """The catalog model with the most parameters that fits with this method and setup: {"id", "md"}."""
    setup = dict(est.setup)
    if info.get("gc_auto"):
        setup["gradient_checkpointing"] = True  # auto turns it on when a model needs it
    where = info["where_in"]
    found = memory.largest_fitting_model(catalog.load(), est.capacity_bytes, setup) if est.capacity_bytes else None
    if found is None:
        return {"id": "", "md": text("model.largest_none", lang, where=where)}
    entry, e = found
    md = text("model.largest", lang, where=where, id=entry.id, size=entry.size_label, gib=_gib(e.total_bytes))
    current = catalog.find(s["model"])
    if current is not None and current.hub_id == entry.hub_id:  # "embedded" is SmolLM2-135M-Instruct too
        md += text("model.largest_is_this", lang)
        return {"id": "", "md": md}
    return {"id": entry.id, "md": md}


def model_context(s: dict, est: memory.Estimate | None, info: dict | None = None) -> dict:
    """What the Train tab reads from ctx.model (see studio/ui/context.py)."""
    method, bits = METHOD_VALUES.get(s["method"], ("lora", 4))
    gc = {"on": True, "off": False}.get(s["gradient_checkpointing"], "auto")
    return {"name": s["model"], "method": method, "precision": s["precision"], "batch_size": s["batch_size"],
            "grad_accum": s["grad_accum"], "max_length": s["max_length"], "gradient_checkpointing": gc,
            "lora_rank": s["lora_rank"], "target_modules": "all-linear", "quant_bits": bits,
            "optimizer": s["optimizer"],
            "verdict": est.verdict if est else None, "estimate_gib": round(est.total_gib, 2) if est else None,
            "checked_for": (info or {}).get("where", ""),
            # The Train tab asks for trust_remote_code only for a model that needs it; starting refuses it
            # unless the server allows it (studio.space.check_remote_code).
            "needs_remote_code": needs_remote_code(s["model"])}


def evaluate(settings: dict, lang: str = "en", hw: dict | None = None) -> dict:
    """Everything the tab shows for these settings. Keys: ok, settings, hardware_md, and either error (one
    plain sentence) or estimate, verdict, verdict_md, figure, components_md, notes_md, recommendations,
    recs_md, largest, model_ctx."""
    s = normalise(settings)
    hw = hardware.detect() if hw is None else hw
    out: dict = {"ok": False, "settings": s, "hardware_md": hardware_md(hw, lang)}
    try:
        check_model_name(s["model"])  # on a public Space: no folder outside the app's own (studio.paths.confine)
        dims, source, entry = resolve_model(s["model"])
        est, info = estimate(dims, s, hw, lang)
    except StudioError as e:
        out.update(error=error_text(e, lang), verdict_md=text("model.error", lang, error=error_text(e, lang)))
        return out
    recs = recommendations(dims, est, s, hw, lang)
    if est.verdict == "fits":
        recs_md = text("model.recs_none", lang)
    elif recs:
        recs_md = text("model.recs_help", lang)
    else:
        recs_md = text("model.recs_empty", lang)
    recs_md = text("model.recs_title", lang) + "\n\n" + recs_md
    title = text("model.peak", lang, gib=f"{est.total_gib:.1f}", verdict=text(f"model.verdict.word.{est.verdict}", lang))
    out.update(ok=True, estimate=est, verdict=est.verdict, verdict_md=verdict_md(est, info, lang),
               figure=memory.breakdown_figure(est, lang, title=title), components_md=components_md(est, lang),
               notes_md=model_notes(s["model"], dims, source, entry, lang), recommendations=recs, recs_md=recs_md,
               largest=largest_model(est, s, info, lang), model_ctx=model_context(s, est, info))
    return out


def use_message(res: dict, lang: str = "en") -> str:
    if not res["ok"]:
        return res["verdict_md"]
    m = res["model_ctx"]
    if m.get("needs_remote_code") and not safe_mode().allow_remote_code:
        return "⛔ " + remote_code_refusal(m["name"]).text(lang)
    method = text("model.method." + {"full": "full", "lora": "lora"}.get(m["method"], f"qlora{m['quant_bits']}"), lang)
    return text("model.used", lang, name=m["name"], method=method, batch=m["batch_size"], length=m["max_length"],
                verdict=text(f"model.verdict.word.{m['verdict']}", lang))


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
            precision = gr.Radio([("auto", "auto"), ("BF16", "bf16"), ("FP16", "fp16"), ("FP32", "fp32")],
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
        out = {verdict: res["verdict_md"], hw_md: res["hardware_md"]}
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

    outputs = [verdict, hw_md, plot, recs_md, recs_state, largest_md, largest_state, largest_btn, parts_md, notes_md,
               ctx.model, *rec_btns]

    def on_change(model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v,
                  request: gr.Request):
        s = settings_of((model, target_v, method_v, precision_v, batch_v, accum_v, length_v, gc_v, rank_v, optimizer_v))
        return view(evaluate(s, lang_of(request)))

    # triggers=None: on page load and on every change of any control (an estimate takes about a millisecond).
    gr.on(None, on_change, controls, outputs, trigger_mode="always_last", show_progress="hidden")

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
            new = apply_change(settings_of(values), changes[i])
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
