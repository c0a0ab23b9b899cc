"""`studio estimate`: peak training memory of a model and setup, whether it fits, and what to change.

    studio estimate --model qwen2.5-7b-instruct --method lora --batch-size 4 --seq-len 2048 --gpu-memory-gib 24
    studio estimate --model ./my-model --method qlora --json

The loss head: `--loss hf` (the default) counts the model's own loss over the full (tokens x vocabulary)
logits with an fp32 upcast, as a plain transformers training loop computes it and as published
measurements were taken. `studio train` uses TRL's chunked loss ("fused"), which never builds the full
logits; for large vocabularies that is many GiB less. The output always names the loss head assumed and
also gives the total for `studio train` (JSON: `studio_train_total_bytes`), so both are in view.
"""

from __future__ import annotations

import argparse
import json

from studio import memory
from studio.errors import StudioError


LOSS_WORDS = {"hf": "hf (the model's own loss over full logits, fp32 upcast, as a plain transformers loop)",
              "fused": "fused (TRL's chunked loss, no full logits)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="a catalog id (e.g. qwen2.5-7b-instruct), a local folder holding config.json, or a Hub id")
    p.add_argument("--method", required=True, choices=memory.METHODS, help="full, lora or qlora")
    p.add_argument("--batch-size", type=int, default=1, help="rows per step on the device (default 1)")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per row (default 1024)")
    gc = p.add_mutually_exclusive_group()
    gc.add_argument("--gradient-checkpointing", dest="gradient_checkpointing", action="store_true", default=True,
                    help="recompute activations in backward (default: on)")
    gc.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false")
    p.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--target-modules", default="all-linear",
                   help="layers that get LoRA: all-linear or names such as q_proj,v_proj (default all-linear)")
    p.add_argument("--quant-bits", type=int, choices=(4, 8), default=4, help="QLoRA storage: 4 (NF4) or 8 bits")
    p.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default=None,
                   help="bf16 (default on a GPU), fp16, or fp32 (default on a CPU)")
    p.add_argument("--optimizer", choices=memory.OPTIMIZERS, default="adamw", help="default adamw (fp32 states)")
    p.add_argument("--loss", choices=("hf", "fused"), default="hf",
                   help="the loss head: hf (default) = the model's own loss over full logits with an fp32 upcast, "
                        "as in a plain transformers loop and in published measurements; fused = TRL's chunked loss, "
                        "without full logits, as `studio train` uses. Either way the output also gives the "
                        "total for `studio train`")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default 1)")
    p.add_argument("--packing", action="store_true", help="rows are packed to the full sequence length")
    p.add_argument("--stage", choices=("sft", "cpt", "dpo"), default="sft", help="dpo doubles the rows")
    p.add_argument("--gpu-memory-gib", type=float, default=None,
                   help="device memory to check against, in GiB (default: the detected GPU, or RAM with --cpu)")
    p.add_argument("--cpu", action="store_true", help="estimate RAM for training on the CPU")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.epilog = ("The default --loss hf matches a standard transformers training loop and published measurements. "
                "`studio train` computes the loss in chunks (fused), which needs less memory for large "
                "vocabularies: the output names the loss head assumed and adds the estimate for `studio train` "
                "(JSON: loss, studio_train_loss, studio_train_total_bytes).")


def _config(args: argparse.Namespace):
    """The run these flags describe, for the run plan (studio.plan): what `studio train` would do."""
    from studio.config import RunConfig

    cfg = RunConfig()
    cfg.model.name = args.model
    m, t = cfg.method, cfg.training
    m.method, m.lora_rank, m.target_modules, m.quant_bits = args.method, args.lora_rank, args.target_modules, args.quant_bits
    t.batch_size, t.max_length, t.grad_accum = args.batch_size, args.seq_len, args.grad_accum
    t.gradient_checkpointing = "on" if args.gradient_checkpointing else "off"
    t.precision, t.optimizer, t.packing, t.stage = args.precision or "auto", args.optimizer, args.packing, args.stage
    t.device = "cpu" if args.cpu else "cuda"
    return cfg


def run(args: argparse.Namespace) -> int:
    from studio import hardware
    from studio.models import catalog
    from studio.plan import plan

    for what, value in (("batch_size", args.batch_size), ("seq_len", args.seq_len), ("grad_accum", args.grad_accum),
                        ("lora_rank", args.lora_rank)):
        if value < 1:
            raise StudioError(f"memory.error.{what}", value=value)
    if args.gpu_memory_gib is not None and not args.gpu_memory_gib > 0:
        raise StudioError("estimate.error.gpu_memory", value=args.gpu_memory_gib)
    if args.cpu and args.method == "qlora":
        raise StudioError("estimate.error.qlora_cpu")

    dims, source = catalog.resolve_dims(args.model)
    hw = hardware.detect()
    if args.gpu_memory_gib is not None:  # the size given: a GPU of that size, or that much RAM with --cpu
        size = int(args.gpu_memory_gib * memory.GiB)
        hw = {**hw, "ram_for_app_bytes": size} if args.cpu else hardware.described_gpu(args.gpu_memory_gib)
    p = plan(_config(args), hw, with_duration=False)
    if p.error is not None:
        raise p.error
    train = p.estimate  # what `studio train` (and every screen) plans: TRL's loss head
    # --loss hf describes a plain transformers loop: the model's own loss, and packing only when asked for.
    setup = {k: v for k, v in train.setup.items() if k not in ("method", "loss", "packing")}
    est = train if args.loss == train.setup["loss"] else memory.estimate(
        dims, args.method, loss=args.loss, packing=args.packing or args.stage == "cpt",
        capacity_bytes=train.capacity_bytes, **setup)
    capacity = est.capacity_bytes
    recs = memory.recommendations(dims, est, catalog_models=catalog.load()) if capacity else []
    best = None
    if capacity:
        found = memory.largest_fitting_model(catalog.load(), capacity, est.setup)
        best = found[0].id if found else None

    if args.json:
        out = est.to_dict()
        out.update(model=args.model, source=source, capacity_source=p.where.text("en") if capacity else None,
                   recommendations=[r.text for r in recs], recommendation_details=[r.to_dict() for r in recs],
                   largest_fitting_catalog_model=best, loss=args.loss, studio_train_loss=train.setup["loss"],
                   studio_train_total_bytes=int(train.total_bytes), studio_train_verdict=train.verdict,
                   plan=p.to_dict())
        print(json.dumps(out, ensure_ascii=False))
        return 0

    print(f"{args.model} ({source}), {args.method}, batch {args.batch_size} x {args.seq_len} tokens, "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, {p.weights} weights, "
          f"{p.precision} compute:")
    print(memory.fmt_table(est))
    print(f"Loss head assumed: {LOSS_WORDS[args.loss]}.")
    train_verdict = f", {train.verdict}" if train.verdict else ""
    print(f"With `studio train`, which uses {LOSS_WORDS[train.setup['loss']]}: "
          f"{memory.format_bytes(train.total_bytes)}{train_verdict}.")
    if capacity:
        print(f"Device: {capacity / memory.GiB:.1f} GiB ({p.where.text('en')}); 90% is usable: {est.verdict}.")
        if recs:
            print("To make it fit, cheapest first:")
            for r in recs:
                print(f"  - {r.text}")
        if best:
            print(f"Largest catalog model that fits with this setup: {best}.")
    else:
        print("No GPU found and no --gpu-memory-gib given, so no fit verdict.")
    return 0
