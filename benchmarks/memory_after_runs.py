"""Does the app give memory back after a run? Resident memory (RSS) of this process before, at the peak of,
and after two consecutive training runs in one process, the way the app runs them (one Job after another).

    python benchmarks/memory_after_runs.py [--steps 6] [--batch 8] [--max-length 512] [--no-trim]

Prints RSS in MiB at each point. The embedded SmolLM2-135M-Instruct, LoRA, on the bundled sample data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.config import RunConfig  # noqa: E402
from studio.engine.job import Job  # noqa: E402


def rss() -> int:
    with open("/proc/self/statm") as f:
        import os

        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--data", default=str(ROOT / "assets/samples/reviews_sentiment.jsonl"))
    ap.add_argument("--no-trim", action="store_true", help="skip returning the C heap to the system (the old behaviour)")
    args = ap.parse_args()
    if args.no_trim:
        from studio.engine import job as job_module

        job_module._trim_heap = lambda: None
    import torch  # noqa: F401  (loaded before the first reading, as the app has it loaded)
    import transformers  # noqa: F401
    import trl  # noqa: F401

    print(f"before any run: {mib(rss())}")
    with tempfile.TemporaryDirectory() as out:
        for n in (1, 2):
            cfg = RunConfig()
            cfg.data.train_file = args.data
            t = cfg.training
            t.max_steps, t.batch_size, t.max_length, t.save_minutes = args.steps, args.batch, args.max_length, 0
            peak, stop = [0], threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss())
                    time.sleep(0.2)

            watcher = threading.Thread(target=sample, daemon=True)
            watcher.start()
            job = Job(cfg, output_dir=out).start()
            job.wait()
            stop.set()
            watcher.join()
            time.sleep(1)
            print(f"run {n} ({job.state}, {job.step} steps): peak {mib(peak[0])}, after {mib(rss())}")


if __name__ == "__main__":
    main()
