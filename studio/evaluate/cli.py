"""`studio eval RUN_DIR --data FILE [--json]`: score base vs fine-tuned on the same rows.

The base is the run's model with its adapter switched off (one copy in memory). Writes RUN/eval.json;
with --json the last thing printed is one JSON object {"base": {...}, "finetuned": {...}, ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio import run_files
from studio.errors import StudioError
from studio.evaluate.checks import (consistency_steps, edge_case_steps, run_to_end, save_metrics, score_steps,
                                    update_eval)
from studio.evaluate.generate import GenerationSettings, load_pair
from studio.evaluate.rows import load_rows
from studio.messages import say

METRIC_KEYS = ("exact_match", "contains", "rouge_l", "bleu", "perplexity")


def read_prompts(path: Path) -> list[str]:
    """One prompt a line. Lines end at line feeds only (studio.data.read.lines_of): a prompt holding U+2028
    or a form feed stays one prompt."""
    from studio.data.read import decode_bytes, lines_of

    text, _ = decode_bytes(path.read_bytes(), path.name)
    return [line.strip() for line in lines_of(text) if line.strip()]


def _help(name: str) -> str:
    return say(f"eval.cli.help.{name}").replace("%", "%%")  # argparse formats help with %


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help=_help("run_dir"))
    parser.add_argument("--data", metavar="FILE", default="", help=_help("data"))
    parser.add_argument("--json", action="store_true", help=_help("json"))
    parser.add_argument("--max-rows", type=int, default=0, metavar="N", help=_help("max_rows"))
    parser.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help=_help("max_new_tokens"))
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help=_help("batch_size"))
    parser.add_argument("--device", choices=("cuda", "mps", "cpu"), default=None, help=_help("device"))
    parser.add_argument("--consistency", type=int, default=0, metavar="K", help=_help("consistency"))
    parser.add_argument("--repeats", type=int, default=5, metavar="N", help=_help("repeats"))
    parser.add_argument("--edge-cases", metavar="FILE", default="", help=_help("edge_cases"))
    parser.add_argument("--general", action="store_true", help=_help("general"))


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
    p = run_files.validation_file(args.run_dir)
    if p is None:
        raise StudioError("eval.error.no_data")
    return p


def run(args) -> int:
    run_dir = Path(args.run_dir)
    if not run_files.config(run_dir).is_file():
        raise StudioError("eval.error.not_run", path=str(run_dir))
    if args.max_new_tokens < 1 or args.batch_size < 1:
        raise StudioError("eval.error.min_one")
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
            raise StudioError("eval.error.no_edge_file", path=str(path))
        prompts = read_prompts(path)
        edge = run_to_end(edge_case_steps(pair, prompts, settings, is_busy=not_busy), show)
        update_eval(run_dir, edge_cases=edge)
        result["edge_cases"] = edge["items"]
    if args.general:
        from studio.evaluate.forgetting import forgetting_steps, train_rows_of

        general = run_to_end(forgetting_steps(pair, batch_size=args.batch_size, is_busy=not_busy,
                                              train_rows=train_rows_of(run_dir)), show)
        update_eval(run_dir, general=general)
        result["general"] = general

    summary = {"base": result["base"], "finetuned": result["finetuned"], "n": result["n"],
               "data_file": str(data), "bleu_tokenize": result["bleu_tokenize"],
               "eval_file": str(run_files.eval_results(run_dir))}
    for key in ("consistency", "edge_cases", "general"):
        if key in result:
            summary[key] = result[key]
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        head = [say(f"eval.cli.col.{k}") for k in ("metric", "base", "finetuned")]
        print(f"{head[0]:<14}{head[1]:>12}{head[2]:>12}")
        for key in METRIC_KEYS:
            b, f = result["base"].get(key), result["finetuned"].get(key)
            print(f"{key:<14}{_fmt(b):>12}{_fmt(f):>12}")
        if "general" in result:
            from studio.evaluate.forgetting import verdict_msg

            print(verdict_msg(result["general"]).text("en"))
        print(say("eval.cli.summary", n=result["n"], name=data.name, path=run_files.eval_results(run_dir)))
    return 0


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}" if abs(x) < 1000 else f"{x:.1f}"
