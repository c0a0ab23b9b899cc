"""RunConfig -> a TRL trainer (SFTTrainer for SFT and CPT, DPOTrainer for DPO), ready to `train()`.

Choices that differ from TRL's defaults, and why:
- gradient checkpointing and packing follow the run plan (studio.plan): checkpointing is on only when
  the run does not fit without it (TRL turns it on always; it costs 20-30% of the speed);
- on a CPU, bf16 only where the processor has it natively (`use_cpu=True` + `bf16` autocast);
- SFT rows are tokenized here with an assistant mask, so the loss is on answers only for any chat
  template (TRL's `assistant_only_loss` needs `{% generation %}` markers most templates lack);
- CPT packs texts into fixed-length blocks ("wrapped"), loss on every token;
- on CUDA, SFT uses padding-free packing (no compute spent on padding); on a CPU, batches of similar
  lengths instead, and the CPU levers of `studio.engine.cpu_speed` (the LM head on answer tokens only,
  fast LoRA dropout, the attention kernel chosen by batch length, one thread per usable core);
- every epoch's checkpoint is kept (TRL's examples keep the last few); a timed or stop checkpoint is
  deleted once a newer one exists (see `KeepEpochCheckpoints`);
- a NaN or infinite loss is logged as it is (transformers' `logging_nan_inf_filter` would log the
  average of the earlier losses instead, hiding it from the NaN guard).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from transformers import TrainerCallback

from studio import run_files
from studio.config import HF_OPTIM, RunConfig
from studio.engine import best, cpu_speed
from studio.engine.metrics import StudioCallback
from studio.messages import Msg

TRAINER_LOG_LEVEL = "warning"


def quiet_libraries() -> None:
    """Library progress bars and info logs drown the studio's own progress in the CLI and the log panel."""
    import datasets as hf_datasets
    import transformers

    hf_datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def run_plan(cfg: RunConfig):
    """The run plan on this machine as it is now (free memory measured again): what the trainer follows
    for gradient checkpointing and packing, and what summary.json records as the estimate."""
    from studio import hardware
    from studio.plan import plan

    return plan(cfg, hardware.detect(refresh=True), with_duration=False)


def memory_recommendations(cfg: RunConfig) -> list:
    """What to change when a run ran out of memory: the plan's changes (Msg), cheapest first."""
    try:
        return [r.message for r in run_plan(cfg).recommendations]
    except Exception:
        return []


def _peft_config(cfg: RunConfig):
    if cfg.method.method == "full":
        return None
    from peft import LoraConfig

    targets = cfg.method.target_modules.strip()
    target_modules = "all-linear" if targets in ("", "all-linear") else [t.strip() for t in targets.split(",") if t.strip()]
    task = "CAUSAL_LM"
    return LoraConfig(r=cfg.method.lora_rank, lora_alpha=cfg.method.lora_alpha, lora_dropout=cfg.method.lora_dropout,
                      target_modules=target_modules, task_type=task, bias="none")


def _quantization_config(cfg: RunConfig):
    if cfg.method.method != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig  # bitsandbytes itself is imported lazily by transformers

    if cfg.method.quant_bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def common_args(cfg: RunConfig, run_dir, placement, has_eval: bool, gradient_checkpointing: bool) -> dict:
    t = cfg.training
    args = dict(
        output_dir=str(run_files.checkpoints(run_dir)),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
        lr_scheduler_type=t.scheduler,
        weight_decay=t.weight_decay,
        seed=t.seed,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="epoch",
        save_total_limit=None,  # KeepEpochCheckpoints prunes instead: every epoch kept, superseded timed saves not
        logging_nan_inf_filter=False,  # the NaN guard must see a NaN loss, not the average of earlier ones
        optim=HF_OPTIM.get(t.optimizer, "adamw_torch"),
        # Evaluate every eval_steps; the default schedule (several times an epoch) is set in build_trainer,
        # once the packed dataset's length is known.
        eval_strategy="steps" if has_eval and t.eval_every_epoch else "no",
        eval_steps=t.eval_steps or 1,
        report_to="none",
        disable_tqdm=True,
        log_level=TRAINER_LOG_LEVEL,
        bf16=placement.precision == "bf16",
        fp16=placement.precision == "fp16",
        use_cpu=placement.device == "cpu",
        gradient_checkpointing=gradient_checkpointing,
        dataloader_num_workers=0,
        remove_unused_columns=True,
        ddp_find_unused_parameters=False if cfg.method.method != "full" else None,
    )
    if placement.device == "cpu":
        args["dataloader_pin_memory"] = False
    return args


def _checkpoint_epoch(ck: Path) -> float | None:
    """The epoch a complete checkpoint was saved at (trainer_state.json is written last), or None."""
    try:
        return float(json.loads((ck / "trainer_state.json").read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def superseded_checkpoints(checkpoints_dir: str | Path) -> list[Path]:
    """Checkpoints to delete: complete ones saved mid-epoch (every `save_minutes`, or on stop) that a newer
    complete checkpoint has superseded. Kept: every end-of-epoch checkpoint (DESIGN: one per epoch, each
    resumable and comparable) and the newest one, which a resume continues from. Incomplete folders are
    left to Job.resume, which removes them."""
    from studio.engine.runs import checkpoint_step

    found = []
    for ck in Path(checkpoints_dir).glob("checkpoint-*"):
        step, epoch = checkpoint_step(ck), _checkpoint_epoch(ck)
        if ck.is_dir() and step is not None and epoch is not None:
            found.append((step, epoch, ck))
    if not found:
        return []
    newest = max(step for step, _, _ in found)
    return sorted((ck for step, epoch, ck in found if step < newest and abs(epoch - round(epoch)) > 1e-6),
                  key=lambda p: p.name)


class KeepEpochCheckpoints(TrainerCallback):
    """Prunes checkpoints instead of `save_total_limit`, which keeps the last N saves of any kind: with
    a save every `save_minutes` as well as every epoch, the last two are mostly timed ones and the epoch
    checkpoints are lost. One rule for every method: keep each epoch's checkpoint and the newest, delete
    superseded timed and stop saves. For LoRA and QLoRA a checkpoint is small (the adapter and its
    optimizer state). For full fine-tuning each holds the weights and the optimizer states, so disk is
    what the timed saves would fill (their number grows with the run's length); epochs are few, so
    keeping one per epoch is bounded: (epochs + 1) checkpoints at most."""

    def on_save(self, args, state, control, **kw):
        if not state.is_world_process_zero:
            return
        for ck in superseded_checkpoints(args.output_dir):
            shutil.rmtree(ck, ignore_errors=True)


def build_trainer(job, train_rows: list[dict], eval_rows: list[dict]):
    """Load the model and tokenizer, build the stage's trainer with the studio's callback."""
    from studio.engine import datasets
    from studio.models.loading import load_model, load_tokenizer

    quiet_libraries()
    cfg, placement, run_dir = job.cfg, job.placement, job.run_dir
    t = cfg.training
    p = run_plan(cfg)
    gc_on = p.gradient_checkpointing
    job.gradient_checkpointing = gc_on
    job._say(p.gc_reason)
    if p.estimate is not None:
        job.estimate_bytes = int(p.estimate.total_bytes)
        job.estimate_allocated_bytes = int(p.estimate.allocated_bytes)

    tok = load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code, revision=cfg.model.revision)
    job._say(Msg("trainer.loading_model", name=cfg.model.name))
    device_map = {"": placement.device} if placement.device == "cuda" else None
    model = load_model(cfg.model.name, dtype=placement.weights_dtype, device_map=device_map,
                       quantization_config=_quantization_config(cfg),
                       trust_remote_code=cfg.model.trust_remote_code, revision=cfg.model.revision)
    if placement.device == "mps":
        model.to("mps")
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tok.pad_token_id
    has_eval = bool(eval_rows)
    args = common_args(cfg, run_dir, placement, has_eval, gc_on)
    callbacks = [StudioCallback(job), KeepEpochCheckpoints()]
    if has_eval:
        callbacks.append(best.KeepBest(run_dir, patience=t.early_stopping_patience, keep=t.final_adapter, say=job._say))
    peft_config = _peft_config(cfg)

    if t.stage == "dpo":
        from trl import DPOConfig, DPOTrainer

        dargs = DPOConfig(**args, beta=t.dpo_beta, max_length=t.max_length)
        trainer = DPOTrainer(model=model, args=dargs, train_dataset=datasets.preference_dataset(train_rows),
                             eval_dataset=datasets.preference_dataset(eval_rows) if has_eval else None,
                             processing_class=tok, peft_config=peft_config, callbacks=callbacks)
        job.tokens_per_step = 0
    else:
        from trl import SFTConfig, SFTTrainer

        if t.stage == "cpt":
            train_ds = datasets.text_dataset(train_rows, tok)
            eval_ds = datasets.text_dataset(eval_rows, tok) if has_eval else None
            extra = dict(packing=True, packing_strategy="wrapped", dataset_text_field="text", eval_packing=True)
        else:
            train_ds = datasets.sft_dataset(train_rows, tok, t.max_length, say=job._say)
            eval_ds = datasets.sft_dataset(eval_rows, tok, t.max_length, say=job._say) if has_eval else None
            # Padding-free packing needs attention that respects sequence boundaries: on CUDA,
            # transformers builds that mask from position ids; on CPU plain padding is faster (the plan decides).
            padding_free = p.packing
            extra = dict(packing=padding_free, packing_strategy="bfd", eval_packing=False)
            if not padding_free:
                # Batches of similar lengths: far less compute spent on padding (a random batch of
                # short and long rows pads every row to the longest).
                args["train_sampling_strategy"] = "group_by_length"
        sargs = SFTConfig(**args, max_length=t.max_length, **extra)
        trainer_class = SFTTrainer
        if placement.device == "cpu" and cpu_speed.plain_lm_head(model):
            trainer_class = cpu_speed.answer_loss_trainer(SFTTrainer)
        trainer = trainer_class(model=model, args=sargs, train_dataset=train_ds, eval_dataset=eval_ds,
                                processing_class=tok, peft_config=peft_config, callbacks=callbacks)
    if has_eval and not t.eval_steps:
        per_step = t.batch_size * t.grad_accum * max(1, trainer.args.world_size)
        trainer.args.eval_steps = best.default_eval_steps(math.ceil(len(trainer.train_dataset) / per_step))
    if placement.device == "cpu":
        cpu_speed.prepare(trainer.model)
    # The Trainer prints every log dict when its own progress bar is off; our callback reports instead.
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer
