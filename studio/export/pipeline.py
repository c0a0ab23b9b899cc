"""The whole export: everything the Export tab or `studio export` asks for, in order, with one progress bar
over all of it, and what it wrote (ExportResult)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.runs import load_run_config
from studio.export.adapter import export_adapter, zip_folder
from studio.export.card import write_model_card
from studio.export.gguf import export_gguf
from studio.export.ollama import write_modelfile
from studio.export.parity import gguf_parity, gguf_type_of, parity_msg
from studio.export.hub import push_to_hub
from studio.export.merge import merge_model
from studio.export.rerun import Rerun, portable_rerun, write_rerun
from studio.export.source import Progress, noop
from studio.files import atomic_write_json
from studio import run_files
from studio.messages import Msg

# How long each step takes, roughly, relative to the others: the progress bar's shares.
WEIGHTS = {"card": 1, "adapter": 1, "zip": 1, "merge": 6, "gguf": 4, "parity": 3, "rerun": 1, "push": 4}


@dataclass
class ExportResult:
    out_dir: Path
    card: Path | None = None
    adapter_dir: Path | None = None
    adapter_zip: Path | None = None
    merged_dir: Path | None = None
    merged_zip: Path | None = None
    gguf_files: list[Path] = field(default_factory=list)
    modelfile: Path | None = None
    parity: list[dict] = field(default_factory=list)
    rerun: Rerun | None = None
    hub_url: str | None = None
    notes: list[Msg] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return [p for p in (self.card, self.adapter_dir, self.adapter_zip, self.merged_dir, self.merged_zip, *self.gguf_files,
                            self.modelfile, self.rerun.folder if self.rerun else None) if p is not None]

    def parts(self) -> list[Msg]:
        """What was written, one message a part (for "Exported to X: ...")."""
        parts = [Msg("export.part.card")] if self.card else []
        parts += [Msg("export.part.adapter")] if self.adapter_zip else []
        parts += [Msg("export.part.merged", path=str(self.merged_dir))] if self.merged_dir else []
        parts += [Msg("export.part.gguf", types=[gguf_type_of(f).upper() for f in self.gguf_files])] if self.gguf_files else []
        parts += [Msg("export.part.rerun")] if self.rerun else []
        return parts

    def downloads(self) -> list[str]:
        """Every file the export wrote that a person may want, one download each: the model card, the
        merged model as one zip, each GGUF file, the Ollama Modelfile and the re-run folder's files (the adapter zip has its own
        button)."""
        files = [str(p) for p in (self.card, self.merged_zip, *self.gguf_files, self.modelfile) if p is not None]
        if self.rerun:
            files += [str(f) for f in sorted(self.rerun.folder.iterdir()) if f.is_file()]
        return files


def default_out_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "export"


def is_full_run(run_dir: str | Path, method: str = "") -> bool:
    """A run that trained the whole model (model/, no adapter/): it exports as a merged model only."""
    run_dir = Path(run_dir)
    return method == "full" or (not (run_dir / "adapter" / "adapter_config.json").is_file()
                                and (run_dir / "model" / "config.json").is_file())


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, *, adapter: bool = True, zip: bool = False,
               merge: bool = False, merged_zip: bool = False, card: bool = True, gguf: bool = False,
               gguf_types: tuple[str, ...] | list[str] = ("f16", "q8_0"), parity: bool = True,
               push_repo: str | None = None, private: bool = True, token: str | None = None,
               push_what: str = "auto", num_gpus: int = 2, backend: str = "fsdp", lang: str = "en",
               progress: Progress | None = None) -> ExportResult:
    """Export what was asked; the rerun/ folder is always written (it is small and is the point of an
    export). Cards and COMMANDS.md are written in `lang`. GGUF: one file per type in `gguf_types`, an Ollama
Modelfile, and (with `parity`) each file loaded back and compared with the merged model: RUN/gguf.json,
a line each in the notes, and a table in the card (written again at the end for it)."""
    progress = progress or noop
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    out = Path(out_dir) if out_dir else default_out_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    is_full = is_full_run(run_dir, cfg.method.method)
    if is_full and (adapter or zip):
        adapter = zip = False
        merge = True
    gguf_types = list(dict.fromkeys(gguf_types or ("f16",))) if gguf else []
    merge = merge or gguf
    res = ExportResult(out_dir=out)
    steps = [s for s, on in (("card", card), ("adapter", adapter or zip), ("zip", zip), ("merge", merge),
                             ("gguf", gguf), ("parity", gguf and parity),
                             ("rerun", True), ("push", bool(push_repo))) if on]
    total = sum(WEIGHTS[s] for s in steps)
    done = 0.0

    def sub(step: str) -> Progress:
        start, span = done / total, WEIGHTS[step] / total
        return lambda f, msg: progress(min(1.0, start + span * max(0.0, min(1.0, f))), msg)

    for step in steps:
        p = sub(step)
        if step == "card":
            res.card = write_model_card(run_dir, out, "merged" if is_full else "adapter",
                                        num_gpus=num_gpus, backend=backend, lang=lang)
            p(1.0, Msg("export.progress.card_done"))
        elif step == "adapter":
            res.adapter_dir = export_adapter(run_dir, out, p, lang=lang)
        elif step == "zip":
            res.adapter_zip = zip_folder(res.adapter_dir, out / f"{run_dir.name}-adapter.zip")
            p(1.0, Msg("export.progress.zipped"))
        elif step == "merge":
            res.merged_dir = merge_model(run_dir, out, p, lang=lang)
            if merged_zip:  # a download for the browser: the folder as one file, stored (weights barely compress)
                res.merged_zip = zip_folder(res.merged_dir, out / f"{run_dir.name}-merged.zip", compress=False)
        elif step == "gguf":
            for k, kind in enumerate(gguf_types):
                share = 1 / len(gguf_types)
                res.gguf_files.append(export_gguf(res.merged_dir, out / f"{run_dir.name}-{kind}.gguf", kind,
                                                  lambda f, msg, k=k: p((k + f) * share, msg)))
            # FROM the first 8-bit file when there is one: close to f16 in answers, half its size.
            preferred = sorted(res.gguf_files, key=lambda f: gguf_type_of(f) != "q8_0")
            res.modelfile = write_modelfile(res.merged_dir, preferred)
        elif step == "parity":
            res.parity = gguf_parity(res.merged_dir, res.gguf_files, run_dir, p)
            atomic_write_json(run_dir / run_files.GGUF_REPORT, {"files": res.parity})
            res.notes += [parity_msg(e) for e in res.parity]
            if res.card:  # the card written first gets the parity table now
                res.card = write_model_card(run_dir, out, "merged" if is_full else "adapter",
                                            num_gpus=num_gpus, backend=backend, lang=lang)
        elif step == "rerun":
            res.rerun = write_rerun(run_dir, out, num_gpus, backend, lang=lang)
            p(1.0, Msg("export.progress.rerun_done"))
        elif step == "push":
            what = push_what if push_what != "auto" else ("adapter" if res.adapter_dir else "merged")
            folder = res.adapter_dir if what == "adapter" else res.merged_dir
            if folder is None:
                folder = (export_adapter(run_dir, out, lang=lang) if what == "adapter"
                          else merge_model(run_dir, out, lang=lang))
            portable = portable_rerun(res.rerun, cfg, lang)
            try:
                res.hub_url = push_to_hub(folder, push_repo, token=token, private=private,
                                          extra={"rerun": portable}, progress=p)
            finally:
                shutil.rmtree(portable, ignore_errors=True)
        done += WEIGHTS[step]
    progress(1.0, Msg("export.progress.done"))
    return res
