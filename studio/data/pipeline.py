"""The Data flow end to end, as plain functions the Data tab and `studio clean` both call:

    table, mapping = load(path, upload_limit())  # read + guess the mapping (the user may change it)
    converted = convert(table, mapping)           # canonical rows; preview_records / apply_edits for experts
    result = clean(converted.rows, CleanOptions(...), tokenizer, progress)
    mix = prepare(result.rows, MixOptions(...))   # rebalance, split, mix in general chat / refusals
    check = check_template(trained_rows(result, mix), tokenizer, options.cutoff_len)  # the rows as trained
    report = build_report(table, mapping, converted, result, options, tokenizer_name, mix, check)
    figure = token_histogram(result.tokens_before, result.tokens_after, options.cutoff_len, lang)
    export_jsonl(mix.train, "train.jsonl"); export_jsonl(mix.eval, "eval.jsonl")

`clean_file` does all of it for one file, writing nothing until everything has succeeded.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from studio.data.clean import CleanOptions, CleanResult, clean
from studio.data.detect import Converted, Mapping, detect, to_rows
from studio.data.read import Table, read_file, sheet_notes, upload_limit
from studio.data.rows import Row, make_row
from studio.data.split_mix import MixOptions, MixResult, prepare
from studio.data.stats import histogram, language_mix, summarize, token_histogram
from studio.data.template_check import DEFAULT_CUTOFF, TemplateReport, check_template
from studio.errors import StudioError
from studio.messages import Msg, has

__all__ = ["load", "convert", "clean", "build_report", "token_histogram", "prepare", "check_template", "trained_rows",
           "export_jsonl", "clean_file", "preview_records", "apply_edits", "upload_limit", "CleanOptions", "MixOptions",
           "Mapping", "Table", "Converted", "CleanResult", "MixResult", "TemplateReport"]

MAX_REPORT_ROWS = 100_000  # removed rows listed in full in the report; counts are always complete


def load(path: str | Path, max_bytes: int | None = None, sheet: str | None = None) -> tuple[Table, Mapping]:
    table = read_file(path, max_bytes, sheet)
    return table, detect(table)


def convert(table: Table, mapping: Mapping) -> Converted:
    converted = to_rows(table, mapping)
    if not converted.rows:
        reasons = sorted({r.reason for r in converted.removed})
        raise StudioError("data.error.no_usable_rows", n=table.input_rows, name=table.source or "-",
                          reasons=[Msg(f"data.reason.{r}") if has(f"data.reason.{r}") else r for r in reasons] or ["-"])
    return converted


def preview_records(rows: list[Row], limit: int = 200) -> list[dict]:
    """Flat records for the tab's editable preview: the row number and the parts an expert corrects
    (the last question and its answer; or prompt, chosen, rejected; or the text)."""
    out = []
    for r in rows[:limit]:
        d = r.data
        if "messages" in d:
            q, a = _last_turn(d["messages"])
            system = d["messages"][0]["content"] if d["messages"][0]["role"] == "system" else ""
            out.append({"number": r.number, "kind": r.kind, "system": system,
                        "prompt": d["messages"][q]["content"] if q is not None else "",
                        "answer": d["messages"][a]["content"] if a is not None else ""})
        elif "chosen" in d:
            p = d["prompt"] if isinstance(d["prompt"], str) else d["prompt"][-1]["content"]
            out.append({"number": r.number, "kind": r.kind, "prompt": p, "chosen": d["chosen"], "rejected": d["rejected"]})
        else:
            out.append({"number": r.number, "kind": r.kind, "text": d["text"]})
    return out


def apply_edits(rows: list[Row], records: list[dict]) -> list[Row]:
    """The rows with the preview's edits written back, matched by row number. Edited rows are new
    Row objects; the others are the same objects."""
    edits = {int(rec["number"]): rec for rec in records if "number" in rec}
    out = []
    for r in rows:
        rec = edits.get(r.number)
        if rec is None:
            out.append(r)
            continue
        d = {k: (list(v) if isinstance(v, list) else v) for k, v in r.data.items()}
        if "messages" in d:
            msgs = [dict(m) for m in d["messages"]]
            q, a = _last_turn(msgs)
            for idx, key in ((q, "prompt"), (a, "answer")):
                if idx is not None and key in rec:
                    msgs[idx]["content"] = str(rec[key])
            if msgs and msgs[0]["role"] == "system" and "system" in rec:
                msgs[0]["content"] = str(rec["system"])
            d["messages"] = msgs
        elif "chosen" in d:
            for key in ("chosen", "rejected"):
                if key in rec:
                    d[key] = str(rec[key])
            if "prompt" in rec:
                if isinstance(d["prompt"], str):
                    d["prompt"] = str(rec["prompt"])
                else:
                    d["prompt"] = [dict(m) for m in d["prompt"]]
                    d["prompt"][-1]["content"] = str(rec["prompt"])
        elif "text" in rec:
            d["text"] = str(rec["text"])
        out.append(r if d == r.data else make_row(d, r.number))
    return out


def _last_turn(msgs: list[dict]) -> tuple[int | None, int | None]:
    """Indexes of the last assistant message and the user message before it."""
    a = next((i for i in range(len(msgs) - 1, -1, -1) if msgs[i]["role"] == "assistant"), None)
    end = a if a is not None else len(msgs)
    q = next((i for i in range(end - 1, -1, -1) if msgs[i]["role"] == "user"), None)
    return q, a


def build_report(table: Table, mapping: Mapping, converted: Converted, result: CleanResult,
                 options: CleanOptions, tokenizer_name: str | None = None, mix: MixResult | None = None,
                 template: TemplateReport | None = None) -> dict:
    """The JSON report: counts by reason (every reason key present), the removed and changed rows
    with their input numbers, before / after statistics, histogram bins, the language mix, and the
    chat template check of the rows as trained (`template`: counts of rows the template refuses and of
    answers the cutoff would cut, with their rows)."""
    removed_all = converted.removed + result.removed + (mix.removed if mix else [])
    counts = result.removed_counts()
    for r in converted.removed + (mix.removed if mix else []):
        counts[r.reason] = counts.get(r.reason, 0) + 1
    report = {
        "source": table.source,
        "file_type": table.file_type,
        "encoding": table.encoding,
        "numbers_are": table.number_label,  # what the row numbers below count in the input file
        "format": converted.format,
        "detected": mapping.kind,
        "mapping": mapping.used() | {"kind": mapping.kind} | ({"label_mode": mapping.label_mode}
                                                              if mapping.kind == "unpaired" else {}),
        "input_rows": table.input_rows,
        "output_rows": len(result.rows) - len(mix.removed) if mix else len(result.rows),
        "removed": counts,
        "changed": result.changed_counts(),
        "flagged": result.flagged_counts(),
        "cutoff": {"cutoff_len": result.cutoff_len, "chosen_from_data": result.cutoff is not None,
                   "too_long": options.too_long,
                   **({"covered": round(result.cutoff.covered, 4), "over": result.cutoff.over,
                       "explanation": [str(m) for m in result.cutoff.messages],
                       "messages": [m.to_dict() for m in result.cutoff.messages]} if result.cutoff else {})},
        "stats": {"before": summarize(converted.rows, result.tokens_before),
                  "after": summarize(result.rows, result.tokens_after)},
        "language": language_mix(result.rows),
        "histogram": histogram(result.tokens_before, result.tokens_after) if result.tokens_after is not None else None,
        "tokenizer": tokenizer_name,
        "options": asdict(options),
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "notes": [],  # English sentences; "note_messages" holds the same as catalog messages
        "removed_rows": [r.to_dict() for r in removed_all[:MAX_REPORT_ROWS]],
        "changed_rows": [c.to_dict() for c in result.changed[:MAX_REPORT_ROWS]],
        "flagged_rows": result.flagged[:MAX_REPORT_ROWS],
    }
    if table.sheets:  # which sheets of a workbook were read and which were left, with their rows
        report["sheets"] = [dict(s, columns=list(s["columns"])) for s in table.sheets]
    notes = sheet_notes(table) + list(result.notes) + (mix.notes if mix else [])
    if result.text_counts:
        report["text"] = result.text_counts
        notes.append(Msg("data.note.blocks", **result.text_counts))
    labelled_bad = counts.get("labelled_bad", 0)
    if labelled_bad:
        notes.append(Msg("data.note.labelled_bad", n=labelled_bad))
    if report["flagged"].get("placeholder"):
        notes.append(Msg("data.note.placeholders", n=report["flagged"]["placeholder"]))
    if len(removed_all) > MAX_REPORT_ROWS:
        notes.append(Msg("data.note.report_rows", n=MAX_REPORT_ROWS))
    if mix:
        report["split"] = mix.counts
    if template is not None:
        report["template"] = template.to_dict()
        if template.cut:
            notes.append(Msg("data.note.template_cut", cutoff=template.cutoff, **template.counts()))
        if template.failed:
            notes.append(Msg("data.note.template_failed", n=len(template.failed)))
    add_notes(report, notes)
    return report


def add_notes(report: dict, notes: list, first: bool = False) -> None:
    """Notes into a report: English text in "notes", the catalog messages in "note_messages"."""
    texts_ = [str(n) for n in notes]
    dicts = [n.to_dict() if isinstance(n, Msg) else {"text": str(n)} for n in notes]
    report.setdefault("notes", [])
    report.setdefault("note_messages", [])
    if first:
        report["notes"][:0], report["note_messages"][:0] = texts_, dicts
    else:
        report["notes"] += texts_
        report["note_messages"] += dicts


def trained_rows(result: CleanResult, mix: MixResult | None = None) -> list[Row]:
    """The rows that go to the trainer: the cleaned rows, or the mixed train and validation sets."""
    return mix.train + mix.eval if mix else result.rows


def export_jsonl(rows: list[Row], path: str | Path) -> int:
    """Write canonical rows as JSONL, atomically (a crash leaves the old file or none), streaming so
    a million rows do not need one giant string."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r.data, ensure_ascii=False))
                f.write("\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(rows)


def clean_file(input_path: str | Path, out_path: str | Path, report_path: str | Path | None = None,
               mapping: Mapping | None = None, options: CleanOptions | None = None, tokenizer=None,
               tokenizer_name: str | None = None, mix: MixOptions | None = None,
               eval_path: str | Path | None = None, sheet: str | None = None) -> dict:
    """Read, convert, clean (and optionally split and mix), then write the output and the report.
    Nothing is written when anything fails; the input file is only read. `sheet`: see `read_file`."""
    options = options or CleanOptions()
    options.check()
    src = Path(input_path)
    for target in (out_path, report_path, eval_path):
        if target and src.exists() and Path(target).resolve() == src.resolve():
            raise StudioError("data.error.overwrite", path=str(target))
    started = time.perf_counter()
    table = read_file(src, sheet=sheet)
    mapping = mapping or detect(table)
    if not mapping.columns:
        mapping.columns = list(table.columns)
    read_s = time.perf_counter() - started
    converted = convert(table, mapping)
    table.rows = []  # the records are in the rows now; a million of them twice is memory wasted
    convert_s = time.perf_counter() - started - read_s
    result = clean(converted.rows, options, tokenizer)
    result.timings = {"read": read_s, "convert": convert_s, **result.timings}
    mixed = prepare(result.rows, mix) if mix else None
    started = time.perf_counter()
    # A cutoff of 0 keeps every row, but training still cuts at its sequence length (2048 unless set).
    template = check_template(trained_rows(result, mixed), tokenizer, result.cutoff_len or DEFAULT_CUTOFF)
    result.timings["template_check"] = time.perf_counter() - started
    report = build_report(table, mapping, converted, result, options, tokenizer_name, mixed, template)
    started = time.perf_counter()
    if mixed:
        export_jsonl(mixed.train, out_path)
        if eval_path:
            export_jsonl(mixed.eval, eval_path)
    else:
        export_jsonl(result.rows, out_path)
    report["timings_s"]["write"] = round(time.perf_counter() - started, 3)
    if report_path:
        from studio.files import atomic_write_json

        atomic_write_json(report_path, report)
    return report
