"""The Data tab: upload a file (or pick a sample), check how its columns were read, correct rows in the
preview, clean it with a report, then split, mix and hand it to the Train tab.

The handlers are plain functions over a plain session dict (`new_state()`) that return plain dicts:
`load_data(path, session, lang)` reads a file and guesses the mapping, `remap(state, mapping, lang)`
applies the user's mapping, `show_preview(state, df, query, lang)` keeps the expert's edits and
filters the preview, `run_clean(state, df, options, model_name, lang)` cleans and reports, and
`use_for_training(state, df, options, mix, model_name, lang)` writes the prepared set and gives the
dict the Train tab reads from `ctx.data`. `build(ctx)` only maps them to components, so the tests
drive the tab without a browser.

All the data work is the engine's (studio.data.pipeline); the user's file is only ever read. Copies of
uploads live in `studio_home()/uploads/<session>/`, prepared sets in the session's own folder
(`studio.paths.session_dir(session)/datasets/<name>-<time>/`): no other session can replace or list them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import messages

from studio.data.clean import PII_MODES, CleanOptions
from studio.data.detect import KINDS, Mapping
from studio.data.pipeline import (apply_edits, build_report, check_template, clean, convert, export_jsonl, load,
                                  preview_records, token_histogram, trained_rows, upload_limit)
from studio.data.read import size_words
from studio.data.template_check import DEFAULT_CUTOFF
from studio.data.rows import texts
from studio.data.split_mix import MixOptions, prepare
from studio import paths
from studio.errors import Sentence, StudioError, error_text
from studio.paths import SAMPLES_DIR, atomic_write_json, studio_home
from studio.ui.i18n import lang_of, t, text

log = logging.getLogger(__name__)

# The parts a column can play, in the order the tab shows them, and which parts each kind reads
# (the same sets as studio.data.detect.detect keeps).
PARTS = ("prompt", "input", "response", "thinking", "system", "history", "messages", "chosen", "rejected", "label",
         "text")
PARTS_OF_KIND = {
    "instruction": ("prompt", "input", "response", "system", "history"),
    "reasoning": ("prompt", "input", "thinking", "response", "system", "history"),
    "conversation": ("messages", "system"),
    "preference": ("prompt", "input", "messages", "chosen", "rejected", "system", "history"),
    "unpaired": ("prompt", "input", "response", "label", "system"),
    "text": ("text",),
}
PREVIEW_ROWS = 200  # rows the preview table holds; the search box reaches the others
TABLE_ROWS = 500  # removed / changed rows listed in the tab; report.json lists them all
TEMPLATE_LIST = 8  # template problems listed by row number in the tab
REASONS = ("empty", "duplicate", "near_duplicate", "garbled", "too_long", "too_short", "personal_data", "unparseable",
           "malformed", "identical_pair", "labelled_bad", "unpaired", "rebalanced")
CLEAN_FIELDS = ("fix_mojibake", "drop_garbled", "dedup", "near_dup", "near_dup_threshold", "cutoff_len", "min_chars",
                "pii")
MIX_FIELDS = ("eval_share", "general_share", "refusal_share", "reasoning_share", "seed")
PREVIEW_COLUMNS = ("number", "kind", "system", "prompt", "answer", "chosen", "rejected", "text")
EDITABLE = ("system", "prompt", "answer", "chosen", "rejected", "text")

# ---- strings -------------------------------------------------------------------------------------


# Reasons the engine gives, in words (a reason without an entry is shown as it is).
_CHANGED_KEYS = {"data.changed.fixed_mojibake", "data.changed.stripped_control", "data.changed.normalized",
                 "data.changed.masked_personal_data"}

TITLE = t("data.tab")

# ---- sessions and files --------------------------------------------------------------------------


def _safe_name(s: str, default: str = "data") -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(s or "")).strip(".-")
    return s[:80] or default


def session_dir(session: str) -> Path:
    """This browser session's folder for copies of uploads and the last cleaned set."""
    return studio_home() / "uploads" / _safe_name(session, "local")


def datasets_dir(session: str = "") -> Path:
    return paths.session_dir(session) / "datasets"


def servable(path: str | Path, session: str = "") -> str:
    """A path Gradio will serve for download. Gradio serves the working directory and the temp folder; the
    studio's home is usually neither, so the file is linked (or copied) into a temp folder for this session."""
    p = Path(path).resolve()
    roots = [Path(os.getcwd()).resolve(), Path(tempfile.gettempdir()).resolve()]
    if any(p.is_relative_to(r) for r in roots) and not any(part.startswith(".") for part in p.parts[1:]):
        return str(p)
    out = Path(tempfile.gettempdir()) / "finetune-studio-downloads" / _safe_name(session, "local")
    out = out / f"{int(time.time() * 1000)}"
    out.mkdir(parents=True, exist_ok=True)
    target = out / p.name
    try:
        os.link(p, target)
    except OSError:
        shutil.copy2(p, target)
    return str(target)


def sample_choices() -> list[tuple[str, str]]:
    """(label, path) of every bundled sample; a sample without a registered description shows its file name."""
    out = []
    for p in sorted(SAMPLES_DIR.glob("*")):
        if p.is_file() and not p.name.startswith("."):
            key = f"data.sample.{p.stem}"
            try:
                label = t(key)
            except KeyError:
                label = p.name
            out.append((label, str(p)))
    return out


def new_state() -> dict:
    """One session's data: the file as read, the mapping, the rows, the expert's edits, the last clean."""
    return {"name": "", "path": "", "table": None, "mapping": {}, "converted": None, "edits": {}, "clean": None,
            "query": ""}


# ---- tokenizers ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=3)
def _tokenizer(name: str):
    p = Path(name).expanduser()
    if p.is_dir() and not (p / "config.json").is_file():  # a tokenizer folder without model weights
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(p)
    from studio.models.loading import load_tokenizer

    return load_tokenizer(name)


def tokenizer_for(model_name: str | None, lang: str = "en") -> tuple[object | None, str, str]:
    """(tokenizer or None, the name it belongs to, a note when it is not the one asked for). The model chosen in
    the Model tab, else the embedded default; "none" skips token lengths."""
    name = (model_name or "embedded").strip() or "embedded"
    if name.lower() == "none":
        return None, "", ""
    from studio.space import embedded_source  # the packaged model, or the same one from the Hub on a Space

    first = ""
    for candidate in dict.fromkeys([name, "embedded", embedded_source()]):
        try:
            tok = _tokenizer(candidate)
        except Exception as e:  # noqa: BLE001 - offline, gated, a missing folder: cleaning goes on without it
            first = first or (error_text(e, lang).splitlines()[0] if str(e) else type(e).__name__)
            continue
        note = "" if candidate == name else text("data.tokenizer.fallback", lang, name=name, error=first)
        return tok, candidate, note
    return None, "", text("data.tokenizer.failed", lang, error=first)


def _model_label(name: str) -> str:
    if name == "embedded":
        return "SmolLM2-135M-Instruct (embedded)"
    return Path(name).name if Path(name).expanduser().is_dir() else name


# ---- loading and mapping -------------------------------------------------------------------------

def _error(e: Exception, lang: str, key: str = "data.error") -> str:
    if isinstance(e, StudioError):
        return text(key, lang, error=error_text(e, lang))
    log.exception("Data tab: unexpected error")
    return text(key, lang, error=text("data.error.other", lang, error=f"{type(e).__name__}: {e}"))


def upload_hint(lang: str = "en") -> str:
    """The line under the upload box, with the cap Gradio and the reader enforce (`upload_limit()`)."""
    return text("data.upload.info", lang, size=size_words(upload_limit()))


def load_data(path: str | Path | None, session: str = "", lang: str = "en", copy: bool = True) -> dict:
    """Read a file and guess its mapping. Keys: ok, state, error (a sentence, when not ok), info_md, mapping
    (a Mapping), preview (a DataFrame). A file that reads but whose columns cannot be mapped gives ok False
    with the state, info_md and mapping, so the user can complete the mapping. An upload is copied into the session's folder only once it reads."""
    state = new_state()
    if not path:
        return {"ok": False, "state": state, "error": text("data.no_data", lang)}
    src = Path(path)
    try:
        table, mapping = load(src, max_bytes=upload_limit())
        if copy:
            folder = session_dir(session)
            if folder.exists():  # one upload per session: the last one replaces the others
                shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            dest = folder / _safe_name(src.name)
            shutil.copyfile(src, dest)
            table.source = src.name
            src = dest
    except Exception as e:  # noqa: BLE001 - every reader error is a sentence in the tab, never a crash
        return {"ok": False, "state": state, "error": _error(e, lang)}
    state.update(name=table.source or src.name, path=str(src), table=table)
    return _apply_mapping(state, mapping, lang)


def mapping_from(values: dict, columns: list[str]) -> Mapping:
    """A Mapping from the tab's values {"kind", part: column, "label_mode"}; parts the kind does not read are
    left out (the dropdowns keep them, so switching back restores them)."""
    kind = values.get("kind") or ""
    used = PARTS_OF_KIND.get(kind, ())
    m = Mapping(kind=kind, label_mode=values.get("label_mode") or "sft", columns=list(columns))
    for part in used:
        setattr(m, part, values.get(part) or "")
    return m


def remap(state: dict, values: dict, lang: str = "en") -> dict:
    """Apply the user's mapping to the file already read."""
    if not state or state.get("table") is None:
        return {"ok": False, "state": state or new_state(), "error": text("data.no_data", lang)}
    table = state["table"]
    state = {**state, "edits": {}, "clean": None, "query": ""}
    return _apply_mapping(state, mapping_from(values, table.columns), lang)


def _apply_mapping(state: dict, mapping: Mapping, lang: str) -> dict:
    table = state["table"]
    state["mapping"] = mapping.to_dict()
    state["converted"], state["clean"] = None, None
    info = _file_line(state, mapping, lang)
    try:
        converted = convert(table, mapping)
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "state": state, "error": _error(e, lang, "data.error.mapping"), "info_md": info,
                "mapping": mapping, "preview": None}
    state["converted"] = converted
    info = _file_line(state, mapping, lang)
    return {"ok": True, "state": state, "error": "", "info_md": info, "mapping": mapping,
            "preview": preview_frame(state, "", lang)}


def _file_line(state: dict, mapping: Mapping, lang: str) -> str:
    table = state["table"]
    kind = text(f"data.kind.{mapping.kind}", lang) if mapping.kind in KINDS else ""
    fmt = text(f"data.format.{mapping.format}", lang) if mapping.format else ""
    enc = f", {table.encoding}" if table.encoding else ""
    if mapping.kind in KINDS:
        lines = [text("data.loaded", lang, name=state["name"], rows=table.input_rows, ftype=table.file_type.upper(),
                      enc=enc, kind=kind, fmt=fmt)]
    else:
        lines = [text("data.loaded.unknown", lang, name=state["name"], rows=table.input_rows,
                      ftype=table.file_type.upper(), enc=enc)]
    if table.skipped:
        s = table.skipped[0]
        lines.append("⚠️ " + text("data.skipped", lang, n=len(table.skipped), first=s["number"],
                                  detail=s.get("detail") or s["reason"]))
    converted = state.get("converted")
    unusable = len(converted.removed) - len(table.skipped) if converted else 0
    if unusable > 0:
        lines.append("⚠️ " + text("data.unusable", lang, n=unusable))
    return "\n\n".join(lines)


# ---- the preview and the expert's edits ----------------------------------------------------------

def _edited_rows(state: dict) -> list:
    rows = state["converted"].rows
    return apply_edits(rows, list(state["edits"].values())) if state["edits"] else rows


def _headers(lang: str) -> dict[str, str]:
    return {c: text(f"data.col.{c}", lang) for c in PREVIEW_COLUMNS}


def preview_frame(state: dict, query: str = "", lang: str = "en") -> pd.DataFrame:
    """The editable preview: up to PREVIEW_ROWS rows (with the edits so far), those matching `query` if given."""
    rows = _edited_rows(state)
    q = (query or "").strip().lower()
    if q:
        rows = [r for r in rows if any(q in s.lower() for s in texts(r.data))]
    records = preview_records(rows, PREVIEW_ROWS)
    if records and "system" in records[0] and not any(r.get("system") for r in records):
        for r in records:  # no row has a system prompt: a column of blanks only takes room
            r.pop("system", None)
    for r in records:
        r["kind"] = text(f"data.rowkind.{r['kind']}", lang) if r["kind"] in ("dialog", "reasoning", "preference",
                                                                             "text") else r["kind"]
    cols = [c for c in PREVIEW_COLUMNS if records and c in records[0]] or ["number", "kind"]
    heads = _headers(lang)
    return pd.DataFrame([[r.get(c, "") for c in cols] for r in records], columns=[heads[c] for c in cols])


def _records_of(df) -> list[dict]:
    """The preview's rows as engine records, whatever language the headers are in."""
    if df is None:
        return []
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df.get("data", []), columns=df.get("headers")) if isinstance(df, dict) else pd.DataFrame(df)
    back = {text(f"data.col.{c}", lang): c for c in PREVIEW_COLUMNS for lang in messages.languages()}
    cols = [back.get(str(h), str(h)) for h in df.columns]
    if "number" not in cols:
        return []
    out = []
    for values in df.itertuples(index=False, name=None):
        rec = {}
        for c, v in zip(cols, values):
            if c == "number":
                try:
                    rec[c] = int(float(v))
                except (TypeError, ValueError):
                    rec = {}
                    break
            elif c in EDITABLE:
                rec[c] = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
        if rec:
            out.append(rec)
    return out


def merge_edits(state: dict, df) -> int:
    """Keep the rows of the preview that differ from the file as edits (and forget rows changed back).
    Returns how many rows carry edits."""
    if not state or state.get("converted") is None:
        return 0
    records = _records_of(df)
    if not records:
        return len(state["edits"])
    by_number = {r.number: r for r in state["converted"].rows}
    originals = {rec["number"]: rec for rec in preview_records([by_number[n] for n in
                                                                 {r["number"] for r in records} if n in by_number],
                                                                len(records))}
    edits = dict(state["edits"])
    for rec in records:
        orig = originals.get(rec["number"])
        if orig is None:
            continue
        changed = {k: v for k, v in rec.items() if k in EDITABLE and k in orig and str(orig[k]) != v}
        if changed:
            edits[rec["number"]] = {"number": rec["number"], **{k: v for k, v in rec.items() if k in orig}}
        else:
            edits.pop(rec["number"], None)
    state["edits"] = edits
    return len(edits)


def show_preview(state: dict, df, query: str = "", lang: str = "en") -> dict:
    """Keep the edits made in the table shown, then show the rows matching `query`."""
    if not state or state.get("converted") is None:
        return {"state": state or new_state(), "preview": None, "count_md": ""}
    merge_edits(state, df)
    state["query"] = query or ""
    return {"state": state, "preview": preview_frame(state, query, lang), "count_md": preview_count(state, lang)}


def preview_count(state: dict, lang: str = "en") -> str:
    if not state or state.get("converted") is None:
        return ""
    total = len(state["converted"].rows)
    q = (state.get("query") or "").strip()
    shown = len(preview_frame(state, q, lang)) if q else min(total, PREVIEW_ROWS)
    return text("data.preview.count", lang, shown=shown, total=total, edits=len(state["edits"]),
                query=text("data.preview.query", lang, q=q) if q else "")


# ---- cleaning ------------------------------------------------------------------------------------

def clean_options(values: dict) -> CleanOptions:
    """CleanOptions from the tab's values (floats and strings as a browser sends them)."""
    d = CleanOptions()
    o = CleanOptions(
        fix_mojibake=bool(values.get("fix_mojibake", d.fix_mojibake)),
        drop_garbled=bool(values.get("drop_garbled", d.drop_garbled)),
        dedup=bool(values.get("dedup", d.dedup)),
        near_dup=bool(values.get("near_dup", d.near_dup)),
        near_dup_threshold=float(values.get("near_dup_threshold", d.near_dup_threshold) or d.near_dup_threshold),
        cutoff_len=int(float(values.get("cutoff_len", d.cutoff_len) or 0)),
        min_chars=int(float(values.get("min_chars", d.min_chars) or 0)),
        pii=str(values.get("pii") or d.pii))
    o.check()
    return o


def _clean_key(state: dict, options: CleanOptions, model_name: str) -> str:
    """What a clean depends on: when this is unchanged the last clean still holds."""
    return json.dumps([asdict(options), model_name or "embedded", state.get("mapping"),
                       sorted(state["edits"].items())], sort_keys=True, ensure_ascii=False, default=str)


def run_clean(state: dict, df, options: dict, model_name: str | None = "embedded", lang: str = "en",
              session: str = "", progress=None) -> dict:
    """Apply the preview's edits, clean, check the chat template and report. Keys: ok, state, error or
    report_md, stats_md, template_md, figure, rows_table, rows_note, report (the JSON report), cleaned_file,
    report_file."""
    if not state or state.get("converted") is None:
        return {"ok": False, "state": state or new_state(), "error": text("data.no_data", lang)}
    try:
        o = clean_options(options)
    except StudioError as e:
        return {"ok": False, "state": state, "error": "⚠️ " + error_text(e, lang)}
    merge_edits(state, df)

    def step(fraction: float, desc: str):
        if progress:
            progress(fraction, desc)

    step(0.0, text("data.loading_tokenizer", lang))
    tok, tok_name, tok_note = tokenizer_for(model_name, lang)
    rows = _edited_rows(state)
    try:
        result = clean(rows, o, tok, progress=lambda f, d: step(0.05 + 0.8 * f, f"{text('data.cleaning', lang)} "
                                                                               f"{_in_lang(d, lang)}"))
        step(0.9, text("data.checking_template", lang))
        # The rows as they will be trained; a cutoff of 0 keeps every row, but training still cuts at 2048.
        template = check_template(result.rows, tok, o.cutoff_len or DEFAULT_CUTOFF)  # without a tokenizer: says so
        table, mapping = state["table"], Mapping.from_dict(state["mapping"])
        report = build_report(table, mapping, state["converted"], result, o, tok_name or None, template=template)
        if tok_note:
            report["notes"].insert(0, tok_note)
        report["edited_rows"] = sorted(state["edits"])
        folder = session_dir(session)
        cleaned_file = folder / "cleaned" / f"{Path(state['name']).stem or 'data'}.cleaned.jsonl"
        export_jsonl(result.rows, cleaned_file)
        report_file = cleaned_file.with_name("report.json")
        atomic_write_json(report_file, report)
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "state": state, "error": _error(e, lang)}
    state["clean"] = {"key": _clean_key(state, o, model_name or "embedded"), "result": result, "options": o,
                      "report": report, "template": template, "tokenizer": tok_name, "cleaned_file": str(cleaned_file)}
    step(1.0, "")
    return {"ok": True, "state": state, "error": "", "report": report,
            "report_md": report_markdown(report, lang, tok_name),
            "stats_md": stats_markdown(report, lang),
            "template_md": template_markdown(template, tok_name, lang, report["removed"].get("too_long", 0)),
            "figure": token_histogram(result.tokens_before, result.tokens_after, o.cutoff_len or None, lang)
            if result.tokens_before is not None else None,
            "rows_table": rows_frame(report, lang, {r.number: r.data for r in result.rows}),
            "rows_note": rows_note(report, lang),
            "cleaned_file": str(cleaned_file), "report_file": str(report_file)}


def _in_lang(s, lang: str) -> str:
    """A Sentence from the engine in the page's language; anything else as it is."""
    return s.text(lang) if isinstance(s, Sentence) else str(s)


def _reason(r: str, lang: str) -> str:
    return text(f"data.reason.{r}", lang) if messages.has(f"data.reason.{r}") else r.replace("_", " ")


def report_markdown(report: dict, lang: str = "en", tokenizer_name: str | None = None) -> str:
    removed = report["removed"]
    changed = report["changed"]
    lines = [text("data.summary", lang, inp=report["input_rows"], out=report["output_rows"],
                  removed=sum(removed.values()), changed=sum(changed.values()),
                  flagged=report["flagged"]["personal_data"])]
    if report.get("edited_rows"):
        lines.append("✏️ " + text("data.summary.edits", lang, n=len(report["edited_rows"])))
    table = [text("data.counts.head", lang)]
    order = [r for r in REASONS if r in removed] + [r for r in removed if r not in REASONS]
    for r in order:
        n = removed[r]
        why = f" · {text(f'data.why.{r}', lang)}" if messages.has(f"data.why.{r}") else ""
        table.append(f"| **{_reason(r, lang)}**{why} | {'**' + str(n) + '**' if n else 0} |")
    lines.append("\n".join(table))
    parts = [f"{text(f'data.changed.{k}', lang) if f'data.changed.{k}' in _CHANGED_KEYS else k} {v}"
             for k, v in changed.items() if v]
    lines.append(text("data.changed", lang, parts=" · ".join(parts)) if parts else text("data.changed.none", lang))
    if tokenizer_name:
        lines.append(text("data.tokenizer", lang, name=_model_label(tokenizer_name)))
    else:
        lines.append(text("data.tokenizer.none", lang))
    if report.get("notes"):
        lines.append(f"**{text('data.notes', lang)}**\n\n" + "\n".join(f"- {n}" for n in report["notes"]))
    return "\n\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else "<1%"


def stats_markdown(report: dict, lang: str = "en") -> str:
    b, a = report["stats"]["before"], report["stats"]["after"]
    rows = [text("data.stats.head", lang), f"| {text('data.stats.rows', lang)} | {b['rows']} | {a['rows']} |"]
    if b["tokens"] and a["tokens"]:
        def tok(s):
            t_ = s["tokens"]
            return f"{t_['mean']:.0f} / {t_['median']:.0f} / {t_['p95']:.0f} / {t_['max']}"
        rows.append(f"| {text('data.stats.tokens', lang)} | {tok(b)} | {tok(a)} |")
        rows.append(f"| {text('data.stats.total', lang)} | {b['tokens']['total']:,} | {a['tokens']['total']:,} |")
    rows.append(f"| {text('data.stats.chars', lang)} | {b['chars']['mean']:.0f} / {b['chars']['max']} | "
                f"{a['chars']['mean']:.0f} / {a['chars']['max']} |")
    out = ["\n".join(rows)]
    sampled = (b.get("tokens") or {}).get("sampled_rows")
    if sampled:
        out.append(text("data.stats.sampled", lang, n=sampled))
    mix = report["language"]
    out.append(text("data.language", lang, zh=_pct(mix["zh"]), en=_pct(mix["en"]), other=_pct(mix["other"])))
    return "\n\n".join(out)


def template_markdown(template, tokenizer_name: str | None, lang: str = "en", too_long: int = 0) -> str:
    """The template check of the rows as trained: rows the template refuses, answers the cutoff would cut
    (counted, the first rows listed), or all fine. `too_long`: rows already removed for their length."""
    head = text("data.template", lang)
    if template is None:
        return f"{head}\n\n{text('data.template.none', lang)}"
    if template.problem:
        return f"{head}\n\n{text('data.template.problem', lang, problem=_in_lang(template.problem, lang))}"
    removed = f" {text('data.template.removed', lang, n=too_long)}" if too_long else ""
    if template.ok:
        return f"{head}\n\n" + text("data.template.ok", lang, n=template.checked,
                                     name=_model_label(tokenizer_name or "embedded"), cutoff=template.cutoff) + removed
    parts = [head]
    for items, key, field_ in ((template.failed, "data.template.failed", "error"),
                               (template.cut, "data.template.cut", "detail")):
        if not items:
            continue
        lines = [text(key, lang, n=len(items), cutoff=template.cutoff, **template.counts())]
        lines += [f"- {text('data.template.row', lang, number=i['number'], detail=i[field_])}"
                  for i in items[:TEMPLATE_LIST]]
        if len(items) > TEMPLATE_LIST:
            lines.append(f"- {text('data.template.more', lang, n=len(items) - TEMPLATE_LIST)}")
        parts.append("\n".join(lines))
    if removed:
        parts.append(removed.strip())
    return "\n\n".join(parts)


def _row_text(row) -> str:
    if isinstance(row, dict):
        try:
            s = " ‖ ".join(texts(row))
        except (KeyError, TypeError):
            s = json.dumps(row, ensure_ascii=False)
    else:
        s = str(row or "")
    s = " ".join(s.split())
    return s if len(s) <= 240 else s[:239] + "…"


def _all_report_rows(report: dict, kept: dict | None = None) -> list[tuple]:
    """(number, action, reason, detail, row text); `kept` ({number: data}) gives the text of rows kept."""
    kept = kept or {}
    out = [(r["number"], "removed", r["reason"], r.get("detail", ""), _row_text(r.get("row"))) for r in
           report["removed_rows"]]
    out += [(c["number"], "changed", c["reason"], f"{c['before']} → {c['after']}" if c.get("before") or c.get("after")
             else "", _row_text(kept.get(c["number"]))) for c in report["changed_rows"] if c["reason"] != "normalized"]
    out += [(f["number"], "flagged", f["reason"], f.get("detail", ""), _row_text(kept.get(f["number"])))
            for f in report["flagged_rows"]]
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def rows_frame(report: dict, lang: str = "en", kept: dict | None = None) -> pd.DataFrame:
    """Every row removed, changed (except plain whitespace normalisation) or flagged, with why."""
    rows = _all_report_rows(report, kept)[:TABLE_ROWS]
    cols = [text(f"data.col.{c}", lang) for c in ("number", "action", "reason", "detail", "row")]
    return pd.DataFrame([[n, text(f"data.action.{a}", lang), _reason(r, lang), d[:300], s] for n, a, r, d, s in rows],
                        columns=cols)


def rows_note(report: dict, lang: str = "en") -> str:
    total = len(_all_report_rows(report))
    if not total:
        return text("data.rows_table.none", lang)
    return text("data.rows_table.more", lang, shown=TABLE_ROWS, total=total) if total > TABLE_ROWS else ""


_WIDTH_WEIGHTS = {"system": 1, "prompt": 2, "answer": 3, "chosen": 2, "rejected": 2, "text": 1}


def column_widths(df: pd.DataFrame | None) -> list[str] | None:
    """The preview's widths: narrow row number and kind, the texts sharing the rest (answers widest)."""
    if df is None or not len(df.columns):
        return None
    back = {text(f"data.col.{c}", lang): c for c in PREVIEW_COLUMNS for lang in messages.languages()}
    cols = [back.get(str(h), str(h)) for h in df.columns]
    total = sum(_WIDTH_WEIGHTS.get(c, 0) for c in cols) or 1
    return [{"number": "56px", "kind": "96px"}.get(c) or f"{round(84 * _WIDTH_WEIGHTS.get(c, 1) / total)}%"
            for c in cols]


# ---- split, mix and use --------------------------------------------------------------------------

def mix_options(values: dict) -> MixOptions:
    d = MixOptions()

    def num(k, cast=float):
        v = values.get(k)
        return cast(float(v)) if v is not None and v != "" else getattr(d, k)

    return MixOptions(eval_share=num("eval_share"), general_share=num("general_share"),
                      refusal_share=num("refusal_share"), reasoning_share=num("reasoning_share"), seed=num("seed", int))


def _new_dataset_dir(name: str, session: str = "") -> Path:
    stem = _safe_name(Path(name).stem, "data")
    base = datasets_dir(session) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder, i = base, 1
    while True:
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            i += 1
            folder = base.with_name(f"{base.name}-{i}")


def use_for_training(state: dict, df, options: dict, mix: dict, model_name: str | None = "embedded",
                     lang: str = "en", session: str = "", progress=None) -> dict:
    """Split and mix the cleaned rows, write train.jsonl / eval.jsonl / report.json into a new dataset folder,
    and give the dict for ctx.data. Cleans first when the data, the edits or the options changed since the
    last clean. Keys: ok, state, error or use_md, data (for ctx.data), files; plus run_clean's keys when it
    cleaned again (clean)."""
    if not state or state.get("converted") is None:
        return {"ok": False, "state": state or new_state(), "error": text("data.no_data", lang)}
    try:
        o = clean_options(options)
        m = mix_options(mix)
    except (StudioError, ValueError) as e:
        return {"ok": False, "state": state, "error": "⚠️ " + error_text(e, lang)}
    merge_edits(state, df)
    out: dict = {}
    last = state.get("clean")
    if last is None or last["key"] != _clean_key(state, o, model_name or "embedded"):
        out = run_clean(state, None, options, model_name, lang, session, progress)
        if not out["ok"]:
            return out
        out["clean"] = True
        last = state["clean"]
    try:
        result = last["result"]
        mixed = prepare(result.rows, m)
        if not mixed.train:
            raise StudioError("No rows are left for training after cleaning; check the report.",
                              "清洗后没有剩下可以训练的行；请查看报告。")
        table, mapping = state["table"], Mapping.from_dict(state["mapping"])
        # Checked again on what is trained: general chat and "I don't know" rows may have been mixed in.
        tok, _, _ = tokenizer_for(last["tokenizer"] or "none", lang)
        template = check_template(trained_rows(result, mixed), tok, last["template"].cutoff)
        report = build_report(table, mapping, state["converted"], result, last["options"], last["tokenizer"] or None,
                              mixed, template)
        report["edited_rows"] = sorted(state["edits"])
        report["mix"] = asdict(m)
        folder = _new_dataset_dir(state["name"], session)
        export_jsonl(mixed.train, folder / "train.jsonl")
        eval_file = ""
        if mixed.eval:
            export_jsonl(mixed.eval, folder / "eval.jsonl")
            eval_file = str(folder / "eval.jsonl")
        atomic_write_json(folder / "report.json", report)
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "state": state, "error": _error(e, lang)}
    fmt = state["converted"].format
    data = {"train_file": str(folder / "train.jsonl"), "eval_file": eval_file, "format": fmt,
            "rows": len(mixed.train)}
    c = mixed.counts
    mixed_words = text("data.used.mixed", lang, general=c["general"], refusals=c["refusals"]) \
        if c["general"] or c["refusals"] else ""
    lines = [text("data.used", lang, train=len(mixed.train), eval=len(mixed.eval), mixed=mixed_words,
                  fmt=text(f"data.format.{fmt}", lang))]
    if out.get("clean"):
        lines.append(text("data.used.recleaned", lang))
    if template is not None and template.cut:
        lines.append(text("data.template.cut", lang, n=len(template.cut), cutoff=template.cutoff,
                          **template.counts()))
    lines += [f"ℹ️ {n}" for n in mixed.notes]
    lines.append(text("data.used.saved", lang, folder=folder))
    files = [str(folder / "train.jsonl")] + ([eval_file] if eval_file else []) + [str(folder / "report.json")]
    out.update(ok=True, state=state, error="", use_md="\n\n".join(lines), data=data, files=files, folder=str(folder),
               prepared_report=report)
    return out


# ---- the tab -------------------------------------------------------------------------------------

def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def _file_path(f) -> str | None:
    if not f:
        return None
    return f if isinstance(f, str) else getattr(f, "path", None) or getattr(f, "name", None) or str(f)


def build(ctx) -> dict:
    state = gr.State(new_state())
    d, dm = CleanOptions(), MixOptions()

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=360):
            gr.Markdown(t("data.step1"))
            upload = gr.File(label=t("data.upload"), file_types=[".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet",
                                                                  ".xlsx", ".txt", ".md"], height=130,
                             elem_id="data-upload")
            hint_md = gr.Markdown(elem_id="data-upload-hint")
            sample = gr.Dropdown(sample_choices(), value=None, label=t("data.sample"), elem_id="data-sample")
            error_md = gr.Markdown(elem_id="data-error")
            info_md = gr.Markdown(elem_id="data-info")
        with gr.Column(scale=3, min_width=480, visible=False) as mapping_col:
            gr.Markdown(t("data.mapping"))
            gr.Markdown(t("data.mapping.help"))
            kind = gr.Dropdown([(t(f"data.kind.{k}"), k) for k in KINDS], value=None, label=t("data.kind"),
                               elem_id="data-kind")
            with gr.Row():
                parts = {p: gr.Dropdown([], value=None, label=t(f"data.part.{p}"), visible=False, min_width=220,
                                        elem_id=f"data-part-{p}") for p in PARTS}
            label_mode = gr.Radio([(t("data.label_mode.sft"), "sft"), (t("data.label_mode.pairs"), "pairs")],
                                  value="sft", label=t("data.label_mode"), visible=False, elem_id="data-label-mode")

    with gr.Column(visible=False) as work_col:
        gr.Markdown(t("data.step2"))
        gr.Markdown(t("data.preview.help"), elem_id="data-preview-help")
        search = gr.Textbox(label=t("data.search"), placeholder=t("data.search.ph"), submit_btn=True,
                            elem_id="data-search")
        count_md = gr.Markdown(elem_id="data-preview-count")
        preview = gr.Dataframe(interactive=True, wrap=True, max_height=420, static_columns=[0, 1], max_chars=400,
                               label=t("data.preview"), elem_id="data-preview")

        gr.Markdown(t("data.step3"))
        with gr.Row(equal_height=False):
            with gr.Column(min_width=260):
                fix_mojibake = gr.Checkbox(d.fix_mojibake, label=t("data.opt.fix_mojibake"),
                                           info=t("help.CleanOptions.fix_mojibake"))
                drop_garbled = gr.Checkbox(d.drop_garbled, label=t("data.opt.drop_garbled"),
                                           info=t("help.CleanOptions.drop_garbled"))
                dedup = gr.Checkbox(d.dedup, label=t("data.opt.dedup"), info=t("help.CleanOptions.dedup"))
            with gr.Column(min_width=260):
                near_dup = gr.Checkbox(d.near_dup, label=t("data.opt.near_dup"), info=t("help.CleanOptions.near_dup"))
                threshold = gr.Slider(0.5, 1.0, d.near_dup_threshold, step=0.01, label=t("data.opt.near_dup_threshold"),
                                      info=t("help.CleanOptions.near_dup_threshold"), elem_id="data-threshold")
            with gr.Column(min_width=260):
                cutoff = gr.Number(d.cutoff_len, precision=0, minimum=0, label=t("data.opt.cutoff_len"),
                                   info=t("data.opt.cutoff_len.info"), elem_id="data-cutoff")
                min_chars = gr.Number(d.min_chars, precision=0, minimum=0, label=t("data.opt.min_chars"),
                                      info=t("help.CleanOptions.min_chars"))
                pii = gr.Radio([(t(f"data.pii.{m}"), m) for m in PII_MODES], value=d.pii, label=t("data.opt.pii"),
                               info=t("help.CleanOptions.pii"), elem_id="data-pii")
        clean_btn = gr.Button(t("data.clean"), variant="primary", elem_id="data-clean")

        with gr.Column(visible=False) as report_col:
            gr.Markdown(t("data.report"))
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=380):
                    report_md = gr.Markdown(elem_id="data-report")
                    template_md = gr.Markdown(elem_id="data-template")
                with gr.Column(scale=1, min_width=380):
                    plot = gr.Plot(show_label=False, elem_id="data-histogram")
                    stats_md = gr.Markdown(elem_id="data-stats")
            with gr.Accordion(t("data.rows_table"), open=True, elem_id="data-rows-accordion"):
                rows_table = gr.Dataframe(interactive=False, wrap=True, max_height=320, elem_id="data-rows")
                rows_md = gr.Markdown()
            with gr.Row():
                download = gr.DownloadButton(t("data.download"), visible=False, elem_id="data-download")
                download_report = gr.DownloadButton(t("data.download_report"), visible=False,
                                                    elem_id="data-download-report")

        gr.Markdown(t("data.step4"))
        with gr.Row(equal_height=False):
            eval_share = gr.Slider(0, 0.5, dm.eval_share, step=0.01, label=t("data.mix.eval_share"),
                                   info=t("help.MixOptions.eval_share"), elem_id="data-eval-share")
            general_share = gr.Slider(0, 0.2, dm.general_share, step=0.01, label=t("data.mix.general_share"),
                                      info=t("data.mix.general_share.info"), elem_id="data-general-share")
            refusal_share = gr.Slider(0, 0.2, dm.refusal_share, step=0.01, label=t("data.mix.refusal_share"),
                                      info=t("help.MixOptions.refusal_share"), elem_id="data-refusal-share")
        with gr.Row(equal_height=False):
            reasoning_share = gr.Slider(0, 1, dm.reasoning_share, step=0.05, label=t("data.mix.reasoning_share"),
                                        info=t("data.mix.reasoning_share.info"), elem_id="data-reasoning-share")
            seed = gr.Number(dm.seed, precision=0, label=t("data.mix.seed"), info=t("help.MixOptions.seed"))
        use_btn = gr.Button(t("data.use"), variant="primary", elem_id="data-use")
        use_md = gr.Markdown(elem_id="data-used")
        files = gr.File(label=t("data.files"), file_count="multiple", interactive=False, visible=False,
                        elem_id="data-files")

    def on_page(request: gr.Request):
        return upload_hint(lang_of(request))

    gr.on(None, on_page, None, hint_md, show_progress="hidden")  # on page load, in the browser's language

    mapping_inputs = [kind, *parts.values(), label_mode]
    option_inputs = {"fix_mojibake": fix_mojibake, "drop_garbled": drop_garbled, "dedup": dedup, "near_dup": near_dup,
                     "near_dup_threshold": threshold, "cutoff_len": cutoff, "min_chars": min_chars, "pii": pii}
    mix_inputs = {"eval_share": eval_share, "general_share": general_share, "refusal_share": refusal_share,
                  "reasoning_share": reasoning_share, "seed": seed}
    report_outputs = [report_col, report_md, template_md, plot, stats_md, rows_table, rows_md, download,
                      download_report]

    def mapping_view(m: Mapping | None, columns: list[str], lang: str) -> dict:
        out = {}
        none = (text("data.part.none", lang), "")
        for p, dd in parts.items():
            if m is None:
                out[dd] = gr.Dropdown(visible=False)
                continue
            value = getattr(m, p, "") or ""
            out[dd] = gr.Dropdown([none] + [(c, c) for c in columns], value=value,
                                  visible=p in PARTS_OF_KIND.get(m.kind, ()))
        out[kind] = gr.Dropdown(value=m.kind or None) if m is not None else gr.Dropdown(value=None)
        out[label_mode] = gr.Radio(value=(m.label_mode if m else "sft"), visible=bool(m and m.kind == "unpaired"))
        return out

    def cleared_report() -> dict:
        return {report_col: gr.Column(visible=False), report_md: "", template_md: "", plot: None, stats_md: "",
                rows_table: None, rows_md: "", download: gr.DownloadButton(visible=False),
                download_report: gr.DownloadButton(visible=False)}

    def loaded_view(res: dict, lang: str) -> dict:
        st = res["state"]
        table = st.get("table")
        out = {state: st, error_md: res.get("error", ""), info_md: res.get("info_md", ""), use_md: "",
               files: gr.File(value=None, visible=False), search: "", **cleared_report()}
        out[mapping_col] = gr.Column(visible=table is not None)
        out.update(mapping_view(res.get("mapping"), table.columns if table is not None else [], lang))
        out[work_col] = gr.Column(visible=bool(res.get("ok")))
        out[preview] = gr.Dataframe(value=res["preview"], column_widths=column_widths(res["preview"])) \
            if res.get("ok") else None
        out[count_md] = preview_count(st, lang) if res.get("ok") else ""
        return out

    load_outputs = [state, error_md, info_md, mapping_col, work_col, kind, *parts.values(), label_mode, preview,
                    count_md, search, use_md, files, *report_outputs]

    def on_upload(f, request: gr.Request):
        lang = lang_of(request)
        try:  # only gradio's upload folder on a public Space (studio.paths.confine)
            path = str(paths.confine(_file_path(f))) if f else None
        except StudioError as e:
            return {error_md: "⚠️ " + e.text(lang)}
        return {**loaded_view(load_data(path, _session(request), lang), lang), sample: None}

    def on_sample(path, request: gr.Request):
        lang = lang_of(request)
        if not path or Path(path).resolve().parent != SAMPLES_DIR.resolve():  # only the bundled samples
            return {error_md: gr.skip()}
        return {**loaded_view(load_data(path, _session(request), lang, copy=False), lang), upload: None}

    upload.upload(on_upload, upload, [*load_outputs, sample])
    sample.input(on_sample, sample, [*load_outputs, upload])

    def on_remap(values: dict, request: gr.Request):
        lang = lang_of(request)
        vals = {"kind": values[kind], "label_mode": values[label_mode], **{p: values[dd] for p, dd in parts.items()}}
        return loaded_view(remap(values[state], vals, lang), lang)

    gr.on([c.input for c in mapping_inputs], on_remap, {state, *mapping_inputs}, load_outputs,
          trigger_mode="always_last")

    def on_search(st, df, q, request: gr.Request):
        lang = lang_of(request)
        res = show_preview(st, df, q, lang)
        return {state: res["state"], count_md: res["count_md"],
                preview: gr.Dataframe(value=res["preview"], column_widths=column_widths(res["preview"]))}

    search.submit(on_search, [state, preview, search], [state, preview, count_md])

    def on_edit(st, df, request: gr.Request):
        merge_edits(st, df)
        return {state: st, count_md: preview_count(st, lang_of(request))}

    preview.input(on_edit, [state, preview], [state, count_md], show_progress="hidden", trigger_mode="always_last")

    def model_name_of(model: dict | None) -> str:
        return (model or {}).get("name") or "embedded"

    def report_view(res: dict, lang: str, session: str) -> dict:
        if not res["ok"]:
            return {state: res["state"], error_md: res["error"]}
        return {state: res["state"], error_md: "", report_col: gr.Column(visible=True), report_md: res["report_md"],
                template_md: res["template_md"], stats_md: res["stats_md"], plot: res["figure"],
                rows_table: gr.Dataframe(value=res["rows_table"], visible=len(res["rows_table"]) > 0,
                                         column_widths=["64px", "96px", "130px", "30%", "40%"]),
                rows_md: res["rows_note"],
                download: gr.DownloadButton(value=servable(res["cleaned_file"], session), visible=True),
                download_report: gr.DownloadButton(value=servable(res["report_file"], session), visible=True),
                count_md: preview_count(res["state"], lang)}

    def on_clean(values: dict, request: gr.Request, progress=gr.Progress()):
        lang, session = lang_of(request), _session(request)
        opts = {n: values[c] for n, c in option_inputs.items()}
        res = run_clean(values[state], values[preview], opts, model_name_of(values[ctx.model]), lang, session,
                        progress=lambda f, desc: progress(f, desc=desc))
        return report_view(res, lang, session)

    clean_btn.click(on_clean, {state, preview, ctx.model, *option_inputs.values()},
                    [state, error_md, count_md, *report_outputs], concurrency_limit=2, concurrency_id="data-clean")

    def on_use(values: dict, request: gr.Request, progress=gr.Progress()):
        lang, session = lang_of(request), _session(request)
        opts = {n: values[c] for n, c in option_inputs.items()}
        mix = {n: values[c] for n, c in mix_inputs.items()}
        res = use_for_training(values[state], values[preview], opts, mix, model_name_of(values[ctx.model]), lang,
                               session, progress=lambda f, desc: progress(f, desc=desc))
        if not res["ok"]:
            return {state: res["state"], error_md: res["error"], use_md: res["error"]}
        out = report_view(res, lang, session) if res.get("clean") else {state: res["state"], error_md: ""}
        out.update({use_md: res["use_md"], ctx.data: res["data"],
                    files: gr.File(value=[servable(f, session) for f in res["files"]], visible=True)})
        return out

    use_btn.click(on_use, {state, preview, ctx.model, *option_inputs.values(), *mix_inputs.values()},
                  [state, error_md, count_md, use_md, files, ctx.data, *report_outputs],
                  concurrency_limit=2, concurrency_id="data-clean")

    def on_model(model):
        length = (model or {}).get("max_length")
        return int(length) if length else gr.skip()

    # Cleaning's cutoff follows the training sequence length chosen in the Model tab: a longer row would
    # be cut in training anyway.
    ctx.model.change(on_model, ctx.model, cutoff, show_progress="hidden")

    return {"upload": upload, "sample": sample, "kind": kind, "parts": parts, "preview": preview, "clean": clean_btn,
            "use": use_btn, "report": report_md, "plot": plot, "rows": rows_table, "state": state}
