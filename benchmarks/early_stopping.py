"""Early stopping and the best checkpoint on a run built to overfit: a few dozen rows whose answers are
arbitrary codes (learnable by heart, not predictable for unseen rows), many epochs, a high learning rate.

Two runs on the same data and settings:
  - "today": no early stopping, the last weights kept (training.early_stopping_patience 0, final_adapter last);
  - "kept":  early stopping after `--patience` evaluations without improvement, the best weights kept.

    python benchmarks/early_stopping.py [--model embedded|tiny|FOLDER] [--rows 40] [--epochs 12] [--lr 2e-3] [--patience 3]

`--model tiny` builds the tests' tiny random Llama (tests/tiny.py): seconds a run on a busy CPU.

Prints, for each run, the steps trained, where validation loss was lowest, and the validation loss of the
weights it kept; then how many steps early stopping saved and the kept adapter's validation loss against
the last one's. The figures come from each run's summary.json (best_step, best_eval_loss, eval_loss).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ["amber", "basil", "cedar", "delta", "ember", "fjord", "gamma", "heron", "indigo", "juniper", "koala",
         "lotus", "maple", "nectar", "onyx", "pepper", "quartz", "raven", "saffron", "tundra"]


def overfit_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"messages": [{"role": "user", "content": f"What is the code word for parcel {i}?"},
                          {"role": "assistant", "content": f"{rng.choice(WORDS)}-{rng.randint(10, 99)}"}]}
            for i in range(n)]


def run(cfg, parent: Path) -> dict:
    from studio.engine.job import Job

    t0 = time.time()
    job = Job(cfg, output_dir=parent).start()
    job.wait()
    s = json.loads((job.run_dir / "summary.json").read_text())
    s["wall_s"] = time.time() - t0
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--epochs", type=float, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=96)  # SmolLM2 adds a system prompt
    args = ap.parse_args()

    from studio.config import RunConfig

    work = Path(tempfile.mkdtemp(prefix="early-stopping-"))
    if args.model == "tiny":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from tiny import save_tiny_model

        args.model = str(save_tiny_model(work / "tiny-llama"))
    data = work / "overfit.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in overfit_rows(args.rows)))
    results = {}
    for label, patience, keep in (("kept", args.patience, "best"), ("today", 0, "last")):
        cfg = RunConfig()
        cfg.model.name, cfg.data.train_file, cfg.data.eval_share = args.model, str(data), 0.25
        t = cfg.training
        t.epochs, t.learning_rate, t.batch_size, t.max_length = args.epochs, args.lr, args.batch, args.max_length
        t.warmup_ratio, t.scheduler, t.early_stopping_patience, t.final_adapter = 0.0, "constant", patience, keep
        cfg.method.lora_rank, cfg.method.lora_alpha, cfg.method.lora_dropout = 16, 32, 0.0
        s = run(cfg, work / "runs")
        results[label] = s
        kept_loss = s["best_eval_loss"] if keep == "best" else s["eval_loss"]
        print(f"{label:>5}: {s['status']}, {s['steps']} of {s['total_steps']} steps in {s['wall_s']:.0f} s; "
              f"lowest validation loss {s['best_eval_loss']:.4f} at step {s['best_step']} "
              f"({100 * s['best_step'] / s['total_steps']:.0f}% of the planned run); last {s['eval_loss']:.4f}; "
              f"kept weights: {keep} (validation loss {kept_loss:.4f})", flush=True)
    today, kept = results["today"], results["kept"]
    saved = today["steps"] - kept["steps"]
    print(f"early stopping saved {saved} of {today['steps']} steps ({100 * saved / max(1, today['steps']):.0f}%), "
          f"{today['wall_s'] - kept['wall_s']:.0f} s")
    print(f"validation loss of the adapter kept: {kept['best_eval_loss']:.4f} (best, step {kept['best_step']}) "
          f"vs {today['eval_loss']:.4f} (last, step {today['steps']}) without it")
    print(f"model {Path(args.model).name}, {args.rows} rows (25% for validation), {args.epochs:g} epochs, lr {args.lr:g}, "
          f"batch {args.batch}, patience {args.patience}; device {kept.get('device')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
