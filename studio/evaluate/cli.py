"""`studio eval RUN_DIR --data FILE [--json]`: score base vs fine-tuned on the same rows.

The base is the run's model with its adapter switched off (one copy in memory). Writes RUN/eval.json;
with --json the last thing printed is one JSON object {"base": {...}, "finetuned": {...}, ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.errors import StudioError
from studio.evaluate.checks import (consistency_steps, edge_case_steps, run_to_end, save_metrics, score_steps,
                                    update_eval)
from studio.evaluate.generate import GenerationSettings, load_pair
from studio.evaluate.rows import load_rows

METRIC_KEYS = ("exact_match", "contains", "rouge_l", "bleu", "perplexity")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (holds config.yaml and adapter/)")
    parser.add_argument("--data", metavar="FILE", default="",
                        help="rows to score: canonical JSONL ({\"messages\": [...]}) or Alpaca / prompt-response / "
                             "question-answer JSONL, JSON or CSV (default: the run's data/eval.jsonl)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last output")
    parser.add_argument("--max-rows", type=int, default=0, metavar="N", help="score only the first N rows (0 = all)")
    parser.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="longest answer generated (64)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="rows generated at once (8)")
    parser.add_argument("--device", choices=("cuda", "mps", "cpu"), default=None, help="default: cuda if present")
    parser.add_argument("--consistency", type=int, default=0, metavar="K",
                        help="also ask the first K prompts several times with sampling and measure agreement")
    parser.add_argument("--repeats", type=int, default=5, metavar="N", help="answers per prompt in the consistency test")
    parser.add_argument("--edge-cases", metavar="FILE", default="",
                        help="a text file of tricky prompts, one per line, answered by both models")


def _progress(quiet: bool):
    last = {}

    def show(event: dict) -> None:
        if quiet or not sys.stderr.isatty() and event.get("done") != event.get("total"):
            return
        key = (event.get("stage"), event.get("model"))
        if last.get(key) == event.get("done"):
            return
        last[key] = event.get("done")
        model = f" {event['model']}" if event.get("model") else ""
        print(f"studio eval: {event['stage']}{model} {event.get('done')}/{event.get('total')}", file=sys.stderr)

    return show


def _data_file(args) -> Path:
    if args.data:
        return Path(args.data)
    for name in ("eval.jsonl", "train.jsonl"):
        p = Path(args.run_dir) / "data" / name
        if p.is_file():
            return p
    raise StudioError("Give the rows to score with --data FILE (this run has no data/eval.jsonl).",
                      "请用 --data FILE 指定要评分的数据（这次训练没有 data/eval.jsonl）。")


def run(args) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise StudioError(f"{run_dir} is not a run folder (it has no config.yaml).",
                          f"{run_dir} 不是训练文件夹（里面没有 config.yaml）。")
    if args.max_new_tokens < 1 or args.batch_size < 1:
        raise StudioError("--max-new-tokens and --batch-size must be at least 1.",
                          "--max-new-tokens 和 --batch-size 都至少为 1。")
    data = _data_file(args)
    rows = load_rows(data, args.max_rows)
    pair = load_pair(run_dir, device=args.device)
    show = _progress(quiet=False)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    # The CLI owns the process: no training job can hold the device here.
    not_busy = lambda: False  # noqa: E731
    result = run_to_end(score_steps(pair, rows, settings, args.batch_size, is_busy=not_busy), show)
    save_metrics(run_dir, result, data_file=str(data))
    if args.consistency > 0:
        prompts = [r.messages for r in rows[:args.consistency]]
        cons = run_to_end(consistency_steps(pair, prompts, args.repeats, is_busy=not_busy), show)
        update_eval(run_dir, consistency=cons)
        result["consistency"] = {k: cons[k] for k in ("base", "finetuned", "n")}
    if args.edge_cases:
        path = Path(args.edge_cases)
        if not path.is_file():
            raise StudioError(f"No edge-case file at {path}.", f"{path} 处没有边界用例文件。")
        prompts = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        edge = run_to_end(edge_case_steps(pair, prompts, settings, is_busy=not_busy), show)
        update_eval(run_dir, edge_cases=edge)
        result["edge_cases"] = edge["items"]

    summary = {"base": result["base"], "finetuned": result["finetuned"], "n": result["n"],
               "data_file": str(data), "bleu_tokenize": result["bleu_tokenize"],
               "eval_file": str(run_dir / "eval.json")}
    for key in ("consistency", "edge_cases"):
        if key in result:
            summary[key] = result[key]
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"{'metric':<14}{'base':>12}{'fine-tuned':>12}")
        for key in METRIC_KEYS:
            b, f = result["base"].get(key), result["finetuned"].get(key)
            print(f"{key:<14}{_fmt(b):>12}{_fmt(f):>12}")
        print(f"{result['n']} rows from {data.name}; written to {run_dir / 'eval.json'}")
    return 0


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}" if abs(x) < 1000 else f"{x:.1f}"
