"""`studio train CONFIG.yaml [--output-dir DIR] [--resume RUN_DIR]`: headless training with a progress
bar; exits 0 on success and prints the run folder's path as its last line."""

from __future__ import annotations

import os
import sys

from studio.errors import StudioError
from studio.messages import Msg


def add_arguments(p) -> None:
    p.add_argument("config", nargs="?", help="a run config YAML (see presets/recipes/)")
    p.add_argument("--output-dir", default=None, help="parent folder for the run folder (default: ./runs)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue a stopped or crashed run")
    p.add_argument("--max-steps", type=int, default=None, help="override training.max_steps")


def run(args) -> int:
    from tqdm import tqdm

    from studio.config import RunConfig
    from studio.engine.job import Job

    if args.resume:
        job = Job.resume(args.resume)
    elif args.config:
        cfg = RunConfig.load(args.config)
        if args.max_steps is not None:
            cfg.training.max_steps = args.max_steps
        job = Job(cfg, output_dir=args.output_dir)
    else:
        raise StudioError("cli.train.need_config")

    main = int(os.environ.get("RANK", "0")) == 0
    job.start()
    bar = tqdm(total=0, unit="step", disable=not main, file=sys.stderr, dynamic_ncols=True)
    seen_log = 0
    try:
        while not job.wait(0.5):
            snap = job.snapshot()
            for line in snap["log"][seen_log:]:
                bar.write(line, file=sys.stderr)
            seen_log = len(snap["log"])
            if snap["total_steps"] and bar.total != snap["total_steps"]:
                bar.total = snap["total_steps"]
                bar.refresh()
            if snap["step"] > bar.n:
                bar.update(snap["step"] - bar.n)
            last = next((e for e in reversed(snap["metrics"]) if "loss" in e), None)
            if last:
                epoch = {"epoch": f"{snap['epoch']:.2f}"} if snap["bound"] == "epochs" else {}
                bar.set_postfix(loss=f"{last['loss']:.4f}", **epoch, refresh=False)
    except KeyboardInterrupt:
        job.stop()
        job.wait()
    bar.close()
    snap = job.snapshot()
    for line in snap["log"][seen_log:]:
        print(line, file=sys.stderr)
    if job.state == "failed":
        raise StudioError(job.error_message or Msg("cli.train.failed"))
    if main:
        print(job.run_dir)
    return 0 if job.state == "completed" else 3
