"""What an export reads from a finished run: its base model's Hub id and dtype, its data, its tokenizer,
and a config with this machine's paths taken out. Plus the two small file helpers every writer here
uses (a folder appears whole or not at all)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from studio import run_files
from studio.config import EMBEDDED_MODEL, RunConfig
from studio.engine.runs import read_summary
from studio.messages import Msg, has

Progress = Callable[[float, Msg], None]  # (fraction, message): the CLI prints str(message), the tab .text(lang)


def noop(fraction: float, message: Msg) -> None:
    pass


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def base_model_id(cfg: RunConfig) -> str | None:
    """The base model's Hub id, when there is one (for the card's `base_model` and the adapter's config)."""
    name = (cfg.model.name or EMBEDDED_MODEL).strip()
    if name == EMBEDDED_MODEL:
        from studio.models.loading import EMBEDDED_HUB_ID

        return EMBEDDED_HUB_ID
    try:
        from studio.models.catalog import find

        entry = find(name)
        if entry is not None:
            return getattr(entry, "hub_id", None) or None
    except ImportError:
        pass
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        return None  # a local folder: no Hub id to point at
    return name if name.count("/") == 1 else None


def base_dtype(cfg: RunConfig):
    """The torch dtype the base model is stored in (config.json `dtype`, or `torch_dtype` in older files)."""
    import torch

    from studio.models.loading import resolve

    source = resolve(cfg.model.name)
    value = None
    local = Path(source) / "config.json"
    if local.is_file():
        d = json.loads(local.read_text(encoding="utf-8"))
        value = d.get("dtype") or d.get("torch_dtype")
    else:  # a Hub id: config.json only, never the weights
        try:
            from transformers import AutoConfig

            c = AutoConfig.from_pretrained(source, revision=cfg.model.revision or None,
                                           trust_remote_code=cfg.model.trust_remote_code)
            value = getattr(c, "dtype", None) or getattr(c, "torch_dtype", None)
        except Exception:
            value = None
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value not in ("auto", ""):
        dt = getattr(torch, value.replace("torch.", ""), None)
        if isinstance(dt, torch.dtype):
            return dt
    return torch.float32  # unknown: float32 loses nothing


def _count_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def _data_format(path: Path) -> str:
    """The kind of a data/ file, from its first row: instructions | conversations | preference | text | unknown
    (a name for `export.format.<kind>` in the catalog)."""
    if not path.is_file():
        return "unknown"
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                return "unknown"
            if "messages" in row:
                turns = sum(1 for m in row["messages"] if m.get("role") == "assistant")
                return "conversations" if turns > 1 else "instructions"
            if {"prompt", "chosen", "rejected"} <= set(row):
                return "preference"
            if "text" in row:
                return "text"
            return "unknown"
    return "unknown"


def data_summary(run_dir: str | Path) -> dict:
    """Rows and format of the data the run trained on (its data/ folder), plus summary.json's counts.
    "format" is a Msg (the kind of data, in whichever language reads it)."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    train, evalf = run_files.train_data(run_dir), run_files.eval_data(run_dir)
    kind = summary.get("data_format") or _data_format(train)
    key = f"export.format.{kind}"
    fmt = Msg(key) if has(key) else Msg("export.format.other", name=kind)
    return {"format": fmt, "train_rows": summary.get("train_rows") or _count_rows(train),
            "eval_rows": summary.get("eval_rows") or _count_rows(evalf)}


def portable_config(cfg: RunConfig) -> RunConfig:
    """The run config with this machine's paths taken out, for a card or a Hub repo: data files become
    `data/<name>` (the data itself is never published) and a local base folder becomes its Hub id."""
    d = cfg.to_dict()
    for key in ("train_file", "eval_file"):
        if d["data"][key]:
            d["data"][key] = f"data/{Path(d['data'][key]).name}"
    hub = base_model_id(cfg)
    if hub and d["model"]["name"] != EMBEDDED_MODEL:
        d["model"]["name"] = hub
    elif not hub:
        d["model"]["name"] = Path(d["model"]["name"]).name
    return RunConfig.from_dict(d)


def run_tokenizer(run_dir: Path, cfg: RunConfig):
    """The tokenizer the run trained with: the one saved beside the adapter (it holds the chat template
    used in training), else the base model's with the studio's fallback template."""
    from transformers import AutoTokenizer

    from studio.models.chat import ensure_chat_template
    from studio.models.loading import load_tokenizer

    for folder in (run_files.adapter(run_dir), run_files.full_model(run_dir)):
        if (folder / "tokenizer_config.json").is_file():
            tok = AutoTokenizer.from_pretrained(folder)
            break
    else:
        tok = load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code, revision=cfg.model.revision)
    ensure_chat_template(tok)
    return tok


def fresh(target: Path) -> Path:
    """A temporary sibling folder that becomes `target` with commit(): a reader never sees half a folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))


def commit(tmp: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target
