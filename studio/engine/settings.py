"""The settings a person edits before a run, as plain values: which ones the Train tab shows, what a
preset sets, a recipe, the chosen data and model folded into a RunConfig, and the checks a dropped file
goes through. The Train tab renders these; this decides them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from studio.config import RunConfig
from studio.errors import StudioError
from studio.messages import Msg
from studio.paths import PRESETS_DIR

RECIPES_DIR = PRESETS_DIR / "recipes"

# Names of the settings the Train tab shows, in the order of its inputs, with their RunConfig section.
SETTINGS = (
    ("stage", "training"), ("name", "model"), ("method", "method"),
    ("epochs", "training"), ("max_steps", "training"), ("learning_rate", "training"),
    ("batch_size", "training"), ("grad_accum", "training"), ("max_length", "training"),
    ("lora_rank", "method"), ("lora_alpha", "method"), ("lora_dropout", "method"), ("target_modules", "method"),
    ("warmup_ratio", "training"), ("scheduler", "training"), ("seed", "training"), ("eval_share", "data"),
    ("optimizer", "training"), ("early_stopping_patience", "training"), ("final_adapter", "training"),
)
SETTING_NAMES = tuple(n for n, _ in SETTINGS)
INTS = {"max_steps", "batch_size", "grad_accum", "max_length", "lora_rank", "lora_alpha", "seed",
        "early_stopping_patience"}
FLOATS = {"epochs", "learning_rate", "lora_dropout", "warmup_ratio", "eval_share"}

PRESETS = {  # learning dynamics only: batch size and sequence length belong to the memory fit
    "quick": dict(epochs=1.0, lora_rank=8, lora_alpha=16, lora_dropout=0.05, warmup_ratio=0.03, scheduler="cosine",
                  eval_share=0.1, max_steps=0),
    "balanced": dict(epochs=3.0, lora_rank=16, lora_alpha=32, lora_dropout=0.05, warmup_ratio=0.05, scheduler="cosine",
                     eval_share=0.1, max_steps=0),
    "thorough": dict(epochs=5.0, lora_rank=32, lora_alpha=64, lora_dropout=0.1, warmup_ratio=0.1, scheduler="cosine",
                     eval_share=0.15, max_steps=0),
}
# Learning rates by (stage family, method family) and preset. LoRA learns at 1e-4..3e-4, full
# fine-tuning ten times lower; DPO moves a model that already answers, so lower again.
PRESET_LR = {
    ("sft", "lora"): {"quick": 2e-4, "balanced": 2e-4, "thorough": 1e-4},
    ("sft", "full"): {"quick": 2e-5, "balanced": 2e-5, "thorough": 1e-5},
    ("dpo", "lora"): {"quick": 5e-5, "balanced": 5e-5, "thorough": 2e-5},
    ("dpo", "full"): {"quick": 1e-6, "balanced": 1e-6, "thorough": 5e-7},
}
FORMAT_STAGE = {"sft": "sft", "preference": "dpo", "text": "cpt"}


def preset_values(preset: str, method: str = "lora", stage: str = "sft") -> dict:
    """The settings a preset sets, for this method and stage."""
    values = dict(PRESETS.get(preset) or PRESETS["quick"])
    fam = ("dpo" if stage == "dpo" else "sft", "full" if method == "full" else "lora")
    values["learning_rate"] = PRESET_LR[fam][preset if preset in PRESETS else "quick"]
    return values


def settings_from_config(cfg: RunConfig) -> dict:
    sections = {"training": cfg.training, "model": cfg.model, "method": cfg.method, "data": cfg.data}
    return {n: getattr(sections[s], n) for n, s in SETTINGS}


def build_config(settings: dict, base: dict | None) -> RunConfig:
    """The RunConfig to start: `base` (a recipe's or the defaults, with the chosen data and model)
    overwritten by the settings shown."""
    d = RunConfig.from_dict(base or {}).to_dict()
    for name, section in SETTINGS:
        if name not in settings or settings[name] is None:
            continue
        v = settings[name]
        if name in INTS:
            v = int(v)
        elif name in FLOATS:
            v = float(v)
        d[section][name] = v
    return RunConfig.from_dict(d)


def recipe_choices() -> list[tuple[str, str]]:
    if not RECIPES_DIR.is_dir():
        return []
    return [(p.stem, str(p)) for p in sorted(RECIPES_DIR.glob("*.yaml"))]


def load_recipe(path: str) -> tuple[dict, dict]:
    """(base config dict, settings) from a bundled recipe file."""
    if path not in {v for _, v in recipe_choices()}:
        raise StudioError("train.recipe_unknown", name=Path(str(path)).name)
    cfg = RunConfig.load(path)
    return cfg.to_dict(), settings_from_config(cfg)


def with_data(base: dict, train_file: str, eval_file: str = "") -> dict:
    d = RunConfig.from_dict(base or {}).to_dict()
    d["data"]["train_file"] = train_file or ""
    d["data"]["eval_file"] = eval_file or ""
    return d


def with_model(base: dict, model: dict) -> dict:
    """The Model tab's choices into the base config (name and method are settings the Train tab shows too)."""
    d = RunConfig.from_dict(base or {}).to_dict()
    if model.get("name"):
        d["model"]["name"] = model["name"]
    if model.get("method"):
        d["method"]["method"] = model["method"]
    if model.get("precision"):
        d["training"]["precision"] = model["precision"]
    gc_value = model.get("gradient_checkpointing")
    if gc_value is not None:
        d["training"]["gradient_checkpointing"] = ("on" if gc_value else "off") if isinstance(gc_value, bool) else str(gc_value)
    for key, section in (("batch_size", "training"), ("grad_accum", "training"), ("max_length", "training"),
                         ("lora_rank", "method"), ("quant_bits", "method")):
        if model.get(key):
            d[section][key] = int(model[key])
    if model.get("target_modules"):
        d["method"]["target_modules"] = model["target_modules"]
    if model.get("optimizer"):
        d["training"]["optimizer"] = model["optimizer"]
    return d


# ---- the data a run trains on ---------------------------------------------------------------------

def kind(fmt: str) -> Msg | str:
    return Msg(f"train.kind.{fmt}") if fmt in FORMAT_STAGE else fmt


@lru_cache(maxsize=16)
def _rows_and_format_cached(path: str, mtime: float) -> tuple[int, str]:
    from studio.engine.datasets import load_rows

    rows, fmt = load_rows(path)
    return len(rows), fmt


def rows_and_format(path: str) -> tuple[int, str]:
    return _rows_and_format_cached(path, Path(path).stat().st_mtime)


def data_line(base: dict, data_info: dict) -> Msg:
    """One line on the data the run will train on: where it came from, its name, rows and kind."""
    f = (base or {}).get("data", {}).get("train_file")
    if not f:
        return Msg("train.no_data")
    rows, fmt = data_info.get("rows"), data_info.get("format")
    if rows is None or fmt is None:
        try:
            rows, fmt = rows_and_format(f)
        except Exception:
            rows, fmt = "?", "?"
    return Msg("train.data_line", source=Msg(f"train.src.{data_info.get('source', 'recipe')}"), name=Path(f).name,
               rows=rows, kind=kind(fmt))


def check_data_file(path: str, stage: str) -> dict:
    """A file dropped on the Train tab goes through the engine's own checks: readable, one row shape, the
    right shape for the stage (the stage follows the data if it did not match).
    Returns {"ok", "message": Msg, and when ok "train_file", "format", "rows", "stage"}."""
    from studio.engine.datasets import check_stage, load_rows

    name = Path(path).name
    try:
        rows, fmt = load_rows(path)
    except StudioError as e:
        return {"ok": False, "message": e.message}
    except Exception as e:  # a reader that does not know this file yet
        return {"ok": False, "message": Msg("train.read_failed", name=name, error=f"{type(e).__name__}: {e}")}
    line = Msg("train.data_line", source=Msg("train.src.upload"), name=name, rows=len(rows), kind=kind(fmt))
    try:
        check_stage(fmt, stage, name)
        message = line
    except StudioError:
        stage = FORMAT_STAGE[fmt]
        message = Msg("train.data_and_stage", line=line, switched=Msg("train.stage_switched", stage=stage.upper()))
    return {"ok": True, "train_file": str(path), "format": fmt, "rows": len(rows), "stage": stage, "message": message}
