"""What the Export tab shows, as plain values in the reader's language: the run's description and card
preview, the re-run commands, and the outcome of an export or a push (which files it wrote). No gradio here;
studio/ui/export_tab.py lays these out.

Hub tokens: `push` takes the token for one call, hands it to the engine, and scrubs it from every string
it returns, in case a library's error message quoted it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from studio import run_files
from studio.engine import runs
from studio.engine.job import is_busy as training_busy
from studio.errors import StudioError, error_text
from studio.evaluate.runs import checked_run as _checked, default_run, has_model, is_full, run_choices
from studio.export.card import card_preview, model_card
from studio.export.gguf import GGUF_TYPES, gguf_support
from studio.export.hub import scrub
from studio.export.pipeline import default_out_dir, export_run
from studio.export.rerun import BACKENDS, accelerate_download, backend_help, launch_command, train_command
from studio.messages import Msg, say

Progress = Callable[[float, str], None]
DEFAULT_GGUF_TYPES = ("f16", "q8_0")

__all__ = ["DEFAULT_GGUF_TYPES", "GGUF_TYPES", "run_choices", "default_run", "has_model", "is_full", "checked_run", "describe_run", "gguf_problem",
           "rerun_view", "export", "push"]


def checked_run(run_dir: str | None, lang: str = "en") -> Path:
    return _checked(run_dir, "export.no_run")


def message(e: BaseException, lang: str, token: str | None = None) -> str:
    text = error_text(e, lang) if isinstance(e, StudioError) else say("export.failed", lang,
                                                                      error=f"{type(e).__name__}: {e}")
    return "⚠️ " + scrub(text, token)


def in_lang(show: Progress | None, lang: str):
    """The engine's progress messages (Msg) as text in the reader's language, for `show`."""
    if show is None:
        return None
    return lambda fraction, msg: show(fraction, msg.text(lang) if hasattr(msg, "text") else str(msg))


def gguf_problem(run_dir: str | Path, lang: str = "en") -> str | None:
    """None when this run's merged model can be written as GGUF, else the sentence that says why not (in
    `lang`). The merged model has the base's architecture and tokenizer, so the base folder answers the question."""
    from studio.models.loading import resolve

    try:
        source = Path(resolve(runs.load_run_config(run_dir).model.name))
    except Exception as e:  # a Hub id not downloaded yet, say
        return error_text(e, lang) or type(e).__name__
    model = Path(run_dir) / "model"
    problem = gguf_support(model if (model / "config.json").is_file() else source)
    return problem.text(lang) if problem else None


def describe_run(run_dir: str | None, lang: str = "en") -> dict:
    """{"run_md", "card", "adapter_ok", "gguf_ok", "gguf_info"} for the chosen run."""
    empty = {"card": "", "adapter_ok": False, "gguf_ok": False, "gguf_info": ""}
    if not run_dir:
        return {**empty, "run_md": say("export.no_runs" if not run_choices() else "export.no_run", lang)}
    try:
        rd = checked_run(run_dir, lang)
        cfg = runs.load_run_config(rd)
    except StudioError as e:
        return {**empty, "run_md": message(e, lang)}
    full = is_full(rd)
    method = (Msg("export.kind.full") if full
              else Msg("export.kind.lora", method={"qlora": "QLoRA"}.get(cfg.method.method, "LoRA")))
    line = say("export.run_line", lang, run=rd.name, model=cfg.model.name, method=method,
               stage=cfg.training.stage.upper(), out=default_out_dir(rd))
    problem = gguf_problem(rd, lang)
    try:
        card = card_preview(model_card(rd, "merged" if full else "adapter", lang=lang))
    except Exception as e:
        card = message(e, lang)
    return {"run_md": line, "card": card, "adapter_ok": not full, "gguf_ok": problem is None,
            "gguf_info": say("export.gguf_no", lang, why=problem) if problem else ""}


def rerun_view(run_dir: str | None, num_gpus=2, backend: str = "fsdp", lang: str = "en") -> dict:
    """{"yaml", "train_cmd", "launch_cmd", "backend_help", "accelerate_file"}: the exact config and the
    commands as they will read in the export's rerun/ folder, and the accelerate config to download."""
    backend = backend if backend in BACKENDS else "fsdp"
    n = max(1, int(num_gpus or 1))
    config = Path("rerun") / run_files.CONFIG
    acc = Path("rerun") / f"accelerate-{backend}.yaml"
    out = {"backend_help": backend_help(backend).text(lang), "train_cmd": train_command(config),
           "launch_cmd": launch_command(config, n, backend, accelerate_config=acc),
           "accelerate_file": accelerate_download(backend)}
    try:
        out["yaml"] = runs.load_run_config(checked_run(run_dir, lang)).to_yaml()
    except StudioError as e:
        out["yaml"] = f"# {error_text(e, lang)}"
    return out


def export(run_dir: str | None, adapter: bool = True, merge: bool = False, card: bool = True, gguf: bool = False,
           num_gpus=2, backend: str = "fsdp", lang: str = "en", progress: Progress | None = None,
           is_busy: Callable[[], bool] = training_busy, out_dir: str | Path | None = None,
           gguf_types: list[str] | None = None) -> dict:
    """Export what was ticked. Returns {"status", "zip", "files", "card"}: "zip" is the adapter zip's path or
    None, "files" the other files worth downloading (each GGUF, the Modelfile, re-run config)."""
    try:
        rd = checked_run(run_dir, lang)
        full = is_full(rd)
        adapter = bool(adapter) and not full
        merge, gguf = bool(merge) or (full and bool(adapter)), bool(gguf)
        if not (adapter or merge or card or gguf):
            return {"status": say("export.nothing", lang)}
        notes = []
        if (merge or gguf) and is_busy():
            merge = gguf = False
            notes.append(Msg("export.busy_merge"))
        gguf_types = [g for g in (gguf_types or DEFAULT_GGUF_TYPES) if g in GGUF_TYPES] or ["f16"]
        res = export_run(rd, out_dir, adapter=adapter, zip=adapter, merge=merge, merged_zip=merge, card=card, gguf=gguf,
                         gguf_types=gguf_types,
                         num_gpus=max(1, int(num_gpus or 1)), backend=backend if backend in BACKENDS else "fsdp",
                         lang=lang, progress=in_lang(progress, lang))
    except Exception as e:
        return {"status": message(e, lang)}
    done = Msg("export.done", out=str(res.out_dir), what=res.parts())
    out = {"status": "\n\n".join(m.text(lang) for m in [*notes, done, *res.notes]),
           "zip": str(res.adapter_zip) if res.adapter_zip else None, "files": res.downloads()}
    if res.card:
        out["card"] = card_preview(res.card.read_text(encoding="utf-8"))
    return out


def push(run_dir: str | None, repo: str, private: bool = True, token: str | None = None, what: str = "adapter",
         lang: str = "en", progress: Progress | None = None, is_busy: Callable[[], bool] = training_busy,
         out_dir: str | Path | None = None, space: bool | None = None) -> dict:
    """Push the adapter or the merged model to the Hub. Returns {"hub"}: the URL, or one sentence."""
    from studio.policy import safe_mode

    token = (token or "").strip() or None
    try:
        rd = checked_run(run_dir, lang)
        if space is None:
            space = safe_mode().enabled
        repo = (repo or "").strip()
        if not repo:
            return {"hub": "⚠️ " + say("export.no_repo", lang)}
        if space and not token:
            # On a public Space HF_TOKEN is the owner's secret: a visitor must bring their own token.
            return {"hub": "⚠️ " + say("export.space_token", lang)}
        if not token:
            from huggingface_hub import get_token

            if not get_token():  # say so before exporting (or merging) anything
                return {"hub": "⚠️ " + say("export.no_token", lang)}
        what = "merged" if is_full(rd) or what == "merged" else "adapter"
        if what == "merged" and is_busy():
            return {"hub": "⏳ " + say("export.busy_push_merged", lang)}
        res = export_run(rd, out_dir, adapter=what == "adapter", merge=what == "merged", card=True,
                         push_repo=repo, private=bool(private), token=token, push_what=what, lang=lang,
                         progress=in_lang(progress, lang))
    except Exception as e:
        return {"hub": message(e, lang, token)}
    visibility = Msg("export.private.yes" if private else "export.private.no")
    return {"hub": scrub("✅ " + say("export.pushed", lang, url=res.hub_url, visibility=visibility), token)}
