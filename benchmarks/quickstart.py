"""The quickstart recipe, end to end: how long it trains, how well it answers held-out reviews, and how
close the run plan's duration (what the Train tab shows before Start) came to the real one.

    python benchmarks/quickstart.py [--repeats 2]

Runs in a fresh runs folder, so the first estimate is the one a new user sees (from this processor's
measured speed); later repeats are estimated from the earlier runs' measured speed, as the Train tab
does then. Held-out reviews: benchmarks/data/reviews_heldout.jsonl (60 reviews written for this check,
none of them in the sample). Prints one line a run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "presets/recipes/quickstart.yaml"
HELD_OUT = ROOT / "benchmarks/data/reviews_heldout.jsonl"


def _estimate(env: dict) -> tuple[float, str]:
    code = ("import json; from studio.config import RunConfig; from studio.plan import plan; "
            f"p = plan(RunConfig.load({str(RECIPE)!r})); "
            "print(json.dumps([p.duration_s, p.speed_basis.text('en')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, STUDIO_RUNS_DIR=str(Path(tmp) / "runs"), TOKENIZERS_PARALLELISM="false")
        for i in range(args.repeats):
            estimate, basis = _estimate(env)
            proc = subprocess.run([sys.executable, "-m", "studio", "train", str(RECIPE)], capture_output=True,
                                  text=True, env=env, cwd=ROOT)
            if proc.returncode != 0:
                raise SystemExit("studio train failed:\n" + proc.stderr[-3000:])
            run_dir = Path(proc.stdout.strip().splitlines()[-1])
            summary = json.loads((run_dir / "summary.json").read_text())
            ev = subprocess.run([sys.executable, "-m", "studio", "eval", str(run_dir), "--data", str(HELD_OUT), "--json"],
                                capture_output=True, text=True, env=env, cwd=ROOT)
            if ev.returncode != 0:
                raise SystemExit("studio eval failed:\n" + ev.stderr[-3000:])
            scores = json.loads(ev.stdout)
            real = summary["duration_s"]
            rows.append((real, estimate, scores["finetuned"]["exact_match"], scores["base"]["exact_match"]))
            print(f"run {i + 1}: trained in {real:.1f} s ({summary['steps']} steps, {summary['tokens_per_second']:.0f} "
                  f"tokens/s); estimate before it {estimate:.0f} s ({basis}): {100 * (estimate - real) / real:+.0f}%; "
                  f"held-out exact match {scores['finetuned']['exact_match']:.3f} (base "
                  f"{scores['base']['exact_match']:.3f})", flush=True)
    print(f"median training time {statistics.median(r[0] for r in rows):.1f} s, "
          f"median held-out exact match {statistics.median(r[2] for r in rows):.3f}")


if __name__ == "__main__":
    main()
