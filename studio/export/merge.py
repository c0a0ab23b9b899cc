"""out_dir/merged/: the adapter folded into the base weights (`merge_and_unload`), saved as safetensors in
the base's dtype with the tokenizer, chat template and model card. A full fine-tuning run's model/ is saved
the same way."""

from __future__ import annotations

import shutil
from pathlib import Path

from studio import run_files
from studio.engine.runs import load_run_config
from studio.errors import StudioError
from studio.export.card import write_model_card
from studio.export.source import Progress, base_dtype, commit, fresh, noop, run_tokenizer
from studio.messages import Msg


def merge_model(run_dir: str | Path, out_dir: str | Path, progress: Progress | None = None,
                device: str | None = None, lang: str = "en") -> Path:
    """out_dir/merged/, on the GPU when there is one, else on the CPU; the card in `lang`. Returns the folder."""
    import torch

    from studio.models.loading import check_safetensors, load_model

    progress = progress or noop
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    adapter, full = run_files.adapter(run_dir), run_files.full_model(run_dir)
    if not run_files.has_adapter(run_dir) and not run_files.has_full_model(run_dir):
        raise StudioError("export.error.no_model", run=run_dir.name)
    # A QLoRA run trained on a 4-bit base; the base is loaded here unquantized, in its own dtype, so
    # the merged weights are not rounded to 4 bits.
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = base_dtype(cfg)
    target = Path(out_dir) / "merged"
    tok = run_tokenizer(run_dir, cfg)
    dtype_name = str(dtype).replace("torch.", "")
    try:
        if (adapter / "adapter_config.json").is_file():
            from peft import PeftModel

            check_safetensors(adapter, "adapter")  # PEFT would fall back to unpickling adapter_model.bin
            progress(0.05, Msg("export.progress.load_base", dtype=dtype_name, device=device.upper()))
            model = load_model(cfg.model.name, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code,
                               revision=cfg.model.revision)
            # Training may have added tokens (a pad token): the adapter then carries the resized embeddings.
            if len(tok) > model.get_input_embeddings().num_embeddings:
                model.resize_token_embeddings(len(tok))
            model.to(device)
            progress(0.45, Msg("export.progress.add_adapter"))
            model = PeftModel.from_pretrained(model, str(adapter))
            progress(0.55, Msg("export.progress.fold"))
            # safe_merge checks the merged weights for NaNs before replacing the originals.
            model = model.merge_and_unload(safe_merge=True)
        else:
            progress(0.05, Msg("export.progress.load_full"))
            model = load_model(str(full), dtype=dtype)
            model.to(device)
    except (torch.OutOfMemoryError, MemoryError):
        raise StudioError("export.error.merge_memory") from None
    model.eval()
    progress(0.7, Msg("export.progress.save_weights", dtype=dtype_name))
    tmp = fresh(target)
    try:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size="2GB")
        progress(0.9, Msg("export.progress.save_tokenizer"))
        tok.save_pretrained(tmp)
        write_model_card(run_dir, tmp, "merged", lang=lang)
        commit(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    del model
    progress(1.0, Msg("export.progress.merged_done"))
    return target
