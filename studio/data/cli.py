"""`studio clean INPUT --out OUT.jsonl [--report REPORT.json] [options]`.

Prints a short summary to stdout; the report file holds everything (removed rows with reasons,
statistics, histogram bins, language mix).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from studio.data.clean import PII_MODES, TOO_LONG_MODES, CleanOptions
from studio.data.detect import KINDS, Mapping
from studio.data.split_mix import MixOptions

_MAP_FIELDS = [f.name for f in fields(Mapping) if f.name not in ("kind", "label_mode", "columns")]


def _help(cls, name: str) -> str:
    from studio.config import field_help

    return field_help(cls, name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="the data file: JSONL, JSON, CSV, TSV, Parquet, Excel (.xlsx, .xls), OpenDocument (.ods) or TXT")
    parser.add_argument("--out", required=True, help="where to write the cleaned rows (canonical JSONL)")
    parser.add_argument("--report", help="where to write the JSON report")
    parser.add_argument("--sheet", help="the workbook sheet to read (with every sheet whose columns agree); by default "
                                        "the first sheet that holds rows. The summary says which sheets were read")
    parser.add_argument("--format", choices=KINDS, help="what the file holds, when the guess is wrong")
    parser.add_argument("--map", action="append", default=[], metavar="PART=COLUMN",
                        help=f"use COLUMN for PART (one of {', '.join(_MAP_FIELDS)}); repeatable")
    parser.add_argument("--label-mode", choices=("sft", "pairs"), default="sft",
                        help="unpaired true/false labels: keep only the good answers (sft) or pair them for DPO")
    parser.add_argument("--tokenizer", default="embedded",
                        help="tokenizer to measure lengths with: 'embedded' (default), a model folder, or 'none'")
    parser.add_argument("--cutoff-len", type=int, default=None,
                        help=_help(CleanOptions, "cutoff_len") + " Default: chosen from the data and the model.")
    parser.add_argument("--config", metavar="RUN.yaml",
                        help="the run to choose the cutoff for: it stays within what fits in memory per its run plan "
                             "(default: the defaults for the --tokenizer model on this machine)")
    parser.add_argument("--too-long", choices=TOO_LONG_MODES, default="drop", help=_help(CleanOptions, "too_long"))
    parser.add_argument("--fill-name", default="", help=_help(CleanOptions, "fill_name"))
    parser.add_argument("--fill-author", default="", help=_help(CleanOptions, "fill_author"))
    parser.add_argument("--min-chars", type=int, default=0, help=_help(CleanOptions, "min_chars"))
    parser.add_argument("--near-dup-threshold", type=float, default=0.85, help=_help(CleanOptions, "near_dup_threshold"))
    parser.add_argument("--no-near-dup", action="store_true", help="skip near-duplicate detection")
    parser.add_argument("--no-dedup", action="store_true", help="keep exact duplicates")
    parser.add_argument("--no-fix-mojibake", action="store_true", help="leave mojibake as it is")
    parser.add_argument("--keep-garbled", action="store_true", help="keep rows of unreadable characters")
    parser.add_argument("--pii", choices=PII_MODES, default="flag", help=_help(CleanOptions, "pii"))
    mix = parser.add_argument_group("split and mix (off unless one of these is given)")
    mix.add_argument("--eval-out", help="also split off a validation set and write it here")
    mix.add_argument("--eval-share", type=float, default=0.1, help=_help(MixOptions, "eval_share"))
    mix.add_argument("--general-share", type=float, help=_help(MixOptions, "general_share"))
    mix.add_argument("--refusal-share", type=float, help=_help(MixOptions, "refusal_share"))
    mix.add_argument("--reasoning-share", type=float, help=_help(MixOptions, "reasoning_share"))
    mix.add_argument("--seed", type=int, default=42, help=_help(MixOptions, "seed"))


def run(args: argparse.Namespace) -> int:
    from studio.data.pipeline import clean_file
    from studio.data.read import read_file
    from studio.errors import StudioError

    options = CleanOptions(fix_mojibake=not args.no_fix_mojibake, drop_garbled=not args.keep_garbled,
                           dedup=not args.no_dedup, near_dup=not args.no_near_dup,
                           near_dup_threshold=args.near_dup_threshold, cutoff_len=args.cutoff_len,
                           too_long=args.too_long, min_chars=args.min_chars, pii=args.pii,
                           fill_name=args.fill_name, fill_author=args.fill_author)
    options.check()
    mapping = _mapping(args) if (args.format or args.map or args.label_mode != "sft") else None
    mix = None
    if args.eval_out or any(v is not None for v in (args.general_share, args.refusal_share, args.reasoning_share)):
        mix = MixOptions(eval_share=args.eval_share if args.eval_out else 0.0,
                         general_share=args.general_share or 0.0, refusal_share=args.refusal_share or 0.0,
                         reasoning_share=args.reasoning_share if args.reasoning_share is not None else 0.25,
                         seed=args.seed)
    if not Path(args.input).is_file() or args.sheet:  # say so before loading a tokenizer (seconds) for nothing
        read_file(args.input, sheet=args.sheet)
    tokenizer, name = load_tokenizer_or_none(args.tokenizer)
    if tokenizer is not None and options.cutoff_len is None:
        from studio.data.cutoff import model_context_length

        options.context_len = model_context_length(name, tokenizer)
        options.memory_len = memory_bound(name, args.config)
    try:
        report = clean_file(args.input, args.out, args.report, mapping, options, tokenizer, name, mix, args.eval_out,
                            args.sheet)
    except MemoryError:
        raise StudioError("data.error.memory") from None
    removed = ", ".join(f"{k} {v}" for k, v in report["removed"].items() if v) or "none"
    print(f"{report['input_rows']} rows in ({report['detected']}, {report['format']}), "
          f"{report['output_rows']} rows out; removed: {removed}.")
    for line in report["cutoff"].get("explanation", []):  # how the cutoff was chosen, when it was
        print(f"cutoff: {line}")
    for note in report["notes"]:
        print(f"note: {note}")
    print(args.out)
    return 0


def memory_bound(model: str | None, config: str | None = None) -> int | None:
    """Tokens per row that fit in memory per the run plan of `config` (a run's YAML), or of the default run
    of `model` on this machine; None when the plan cannot size it (a tokenizer folder without a model)."""
    from studio.config import RunConfig
    from studio.errors import StudioError
    from studio.plan import longest_fitting_length

    cfg = RunConfig.load(config) if config else RunConfig()
    if not config:
        cfg.model.name = model or "embedded"
    try:
        return longest_fitting_length(cfg)
    except StudioError:
        return None


def _mapping(args) -> Mapping:
    from studio.data.read import read_file
    from studio.data.detect import detect
    from studio.errors import StudioError

    m = detect(read_file(args.input, sheet=args.sheet))
    if args.format:
        m.kind = args.format  # the guessed columns stay: --map fills in what the guess missed
    for item in args.map:
        part, _, column = item.partition("=")
        if part not in _MAP_FIELDS or not column:
            raise StudioError("data.error.map_arg", parts=_MAP_FIELDS, item=item)
        setattr(m, part, column)
    m.label_mode = args.label_mode
    return m


def load_tokenizer_or_none(name: str):
    """(tokenizer, name) or (None, None). A folder is read directly (a tokenizer folder needs no model
    weights); anything else goes through the model loader, imported lazily because loading takes
    seconds. When the embedded default cannot be had, cleaning goes on without token lengths."""
    if name.lower() == "none":
        return None, None
    if Path(name).is_dir():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name), name
    try:
        from studio.models.loading import load_tokenizer
    except ImportError:
        print("note: no tokenizer is available yet; lengths are not measured in tokens.", file=sys.stderr)
        return None, None
    try:
        return load_tokenizer(name), name
    except Exception as e:  # noqa: BLE001 - the embedded default must never stop a clean
        if name != "embedded":
            raise
        print(f"note: could not load the embedded tokenizer ({e}); lengths are not measured in tokens.",
              file=sys.stderr)
        return None, None
