"""out_dir/adapter/: the run's PEFT adapter with its tokenizer, chat template and model card, ready to load
with `PeftModel.from_pretrained` or `AutoPeftModelForCausalLM` and to push; and the same folder zipped."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from studio import run_files
from studio.engine.runs import load_run_config
from studio.errors import StudioError
from studio.export.card import write_model_card
from studio.export.source import Progress, base_model_id, commit, fresh, noop, run_tokenizer
from studio.messages import Msg

# Files a training run may leave in adapter/ that do not belong in an export: training_args.bin is a
# pickle of TrainingArguments (a hub_token field lives there) and the rest are trainer state.
SKIP_IN_ADAPTER = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}


def export_adapter(run_dir: str | Path, out_dir: str | Path, progress: Progress | None = None,
                   lang: str = "en") -> Path:
    """out_dir/adapter/ (see the module's docstring); the card in `lang`. Returns the folder."""
    progress = progress or noop
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    src = run_files.adapter(run_dir)
    if not run_files.has_adapter(run_dir):
        if run_files.has_full_model(run_dir):
            raise StudioError("export.error.full_has_no_adapter")
        raise StudioError("export.error.no_adapter", run=run_dir.name)
    progress(0.1, Msg("export.progress.copy_adapter"))
    target = Path(out_dir) / "adapter"
    tmp = fresh(target)
    try:
        for f in src.iterdir():
            if f.is_file() and f.name not in SKIP_IN_ADAPTER:
                shutil.copy2(f, tmp / f.name)
        # Point the adapter at the base on the Hub (not this machine's cache folder) so that it loads
        # anywhere; a local base folder has no such name, so it stays as it is.
        hub = base_model_id(cfg)
        if hub:
            ac = json.loads((tmp / "adapter_config.json").read_text(encoding="utf-8"))
            ac["base_model_name_or_path"] = hub
            (tmp / "adapter_config.json").write_text(json.dumps(ac, indent=2) + "\n", encoding="utf-8")
        if not (tmp / "tokenizer_config.json").is_file():
            progress(0.5, Msg("export.progress.add_tokenizer"))
            run_tokenizer(run_dir, cfg).save_pretrained(tmp)
        progress(0.8, Msg("export.progress.card"))
        write_model_card(run_dir, tmp, "adapter", lang=lang)
        commit(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress(1.0, Msg("export.progress.adapter_done"))
    return target


def zip_folder(folder: str | Path, zip_path: str | Path, compress: bool = True) -> Path:
    """A zip of `folder` whose entries sit under the folder's name (unzips to one folder, not a spill).
    `compress=False` stores the files as they are: model weights barely compress, and deflating a
    gigabyte costs a minute."""
    folder, zip_path = Path(folder), Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.partial")
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(tmp, "w", compression=method, allowZip64=True) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, Path(zip_path.stem) / f.relative_to(folder))
    os.replace(tmp, zip_path)
    return zip_path


def zip_adapter(run_dir: str | Path, out_dir: str | Path, progress: Progress | None = None) -> Path:
    """out_dir/<run>-adapter.zip (exporting the adapter folder first if needed), for a download button."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    adapter = out_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        export_adapter(run_dir, out_dir, progress)
    return zip_folder(adapter, out_dir / f"{run_dir.name}-adapter.zip")
