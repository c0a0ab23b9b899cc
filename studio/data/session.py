"""One person's work in the Data tab, as plain functions over a plain session dict (`new_state()`) that
return plain dicts; the tab maps them to components, and the tests drive them without a browser.

    res = load_data(path, session, lang)          # read a file, guess the mapping, preview the rows
    res = remap(res["state"], values, lang)       # the person's mapping instead of the guess
    res = show_preview(state, df, query, lang)    # keep the expert's edits, filter the preview
    res = run_clean(state, df, options, model_name, lang, session)   # clean, check the template, report
    res = use_for_training(state, df, options, mix, model_name, lang, session)  # split, mix, write; ctx.data

All the data work is the engine's (studio.data.pipeline); the user's file is only ever read. Copies of
uploads live in `studio_home()/uploads/<session>/`, prepared sets in the session's own folder
(`studio.paths.session_dir(session)/datasets/<name>-<time>/`): no other session can replace or list them.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from studio import messages, paths
from studio.data.clean import CleanOptions
from studio.data.detect import KINDS, Mapping
from studio.data.language import chinese_share, language_advice
from studio.data.pipeline import (add_notes, apply_edits, build_report, check_template, clean, convert,
                                  export_jsonl, load, preview_records, token_histogram, trained_rows, upload_limit)
from studio.data.read import sheet_choices, sheet_notes, size_words
from studio.data.report_view import (PREVIEW_COLUMNS, cutoff_markdown, language_markdown, report_markdown,
                                     rows_frame, rows_note, stats_markdown, template_markdown)
from studio.data.rows import texts
from studio.data.split_mix import MixOptions, prepare
from studio.data.template_check import DEFAULT_CUTOFF
from studio.errors import StudioError, error_text
from studio.messages import Msg, say
from studio.paths import SAMPLES_DIR, studio_home
from studio.files import atomic_write_json

log = logging.getLogger(__name__)

PARTS = ("prompt", "input", "response", "thinking", "system", "history", "messages", "chosen", "rejected", "label",
         "text")
PARTS_OF_KIND = {
    "instruction": ("prompt", "input", "response", "system", "history"),
    "reasoning": ("prompt", "input", "thinking", "response", "system", "history"),
    "conversation": ("messages", "system"),
    "preference": ("prompt", "input", "messages", "chosen", "rejected", "system", "history"),
    "unpaired": ("prompt", "input", "response", "messages", "label", "system"),
    "text": ("text",),
}
PREVIEW_ROWS = 200  # rows the preview table holds; the search box reaches the others
CLEAN_FIELDS = ("fix_mojibake", "drop_garbled", "dedup", "near_dup", "near_dup_threshold", "cutoff_len", "too_long",
                "min_chars", "pii", "fill_name", "fill_author")
MIX_FIELDS = ("eval_share", "general_share", "refusal_share", "reasoning_share", "seed")
EDITABLE = ("system", "prompt", "answer", "chosen", "rejected", "text")

# ---- sessions and files --------------------------------------------------------------------------


def _safe_name(s: str, default: str = "data") -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(s or "")).strip(".-")
    return s[:80] or default


def session_dir(session: str) -> Path:
    """This browser session's folder for copies of uploads and the last cleaned set."""
    return studio_home() / "uploads" / _safe_name(session, "local")


def datasets_dir(session: str = "") -> Path:
    return paths.session_dir(session) / "datasets"



def sample_choices() -> list[tuple[str, str]]:
    """(label, path) of every bundled sample; a sample without a registered description shows its file name."""
    out = []
    for p in sorted(SAMPLES_DIR.glob("*")):
        if p.is_file() and not p.name.startswith("."):
            key = f"data.sample.{p.stem}"
            try:
                label = say(key)
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


def tokenizer_for(model_name: str | None, lang: str = "en") -> tuple[object | None, str, Msg | None]:
    """(tokenizer or None, the name it belongs to, a note when it is not the one asked for). The model chosen in
    the Model tab, else the embedded default; "none" skips token lengths."""
    name = (model_name or "embedded").strip() or "embedded"
    if name.lower() == "none":
        return None, "", None
    from studio.space import embedded_source  # the packaged model, or the same one from the Hub on a Space

    first = ""
    for candidate in dict.fromkeys([name, "embedded", embedded_source()]):
        try:
            tok = _tokenizer(candidate)
        except Exception as e:  # noqa: BLE001 - offline, gated, a missing folder: cleaning goes on without it
            first = first or (error_text(e, lang).splitlines()[0] if str(e) else type(e).__name__)
            continue
        note = None if candidate == name else Msg("data.tokenizer.fallback", name=name, error=first)
        return tok, candidate, note
    return None, "", Msg("data.tokenizer.failed", error=first)


# ---- loading and mapping -------------------------------------------------------------------------

def _error(e: Exception, lang: str, key: str = "data.error") -> str:
    if isinstance(e, StudioError):
        return say(key, lang, error=error_text(e, lang))
    log.exception("Data tab: unexpected error")
    return say(key, lang, error=say("data.error.other", lang, error=f"{type(e).__name__}: {e}"))


def upload_hint(lang: str = "en") -> str:
    """The line under the upload box, with the cap Gradio and the reader enforce (`upload_limit()`)."""
    return say("data.upload.info", lang, size=size_words(upload_limit()))


def load_data(path: str | Path | None, session: str = "", lang: str = "en", copy: bool = True,
              sheet: str | None = None) -> dict:
    """Read a file and guess its mapping. Keys: ok, state, error (a sentence, when not ok), info_md, mapping
    (a Mapping), preview (a DataFrame), sheets (the workbook sheets to choose between, [] when there is no
    choice). A file that reads but whose columns cannot be mapped gives ok False with the state, info_md and
    mapping, so the user can complete the mapping. An upload is copied into the session's folder only once it
    reads. `sheet`: the workbook sheet to read instead of the first (see studio.data.read.read_file)."""
    state = new_state()
    if not path:
        return {"ok": False, "state": state, "error": say("data.no_data", lang)}
    src = Path(path)
    try:
        table, mapping = load(src, max_bytes=upload_limit(), sheet=sheet)
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
    return {**_apply_mapping(state, mapping, lang), "sheets": sheet_choices(table)}


def choose_sheet(state: dict, sheet: str, lang: str = "en") -> dict:
    """Read another sheet of the workbook already loaded (and the sheets whose columns agree with it)."""
    if not state or not state.get("path"):
        return {"ok": False, "state": state or new_state(), "error": say("data.no_data", lang)}
    res = load_data(state["path"], "", lang, copy=False, sheet=sheet)
    if res["state"].get("table") is not None:
        res["state"]["name"] = state["name"]  # the upload's own name, not its copy's
        res["info_md"] = _file_line(res["state"], Mapping.from_dict(res["state"]["mapping"]), lang)
    return res


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
        return {"ok": False, "state": state or new_state(), "error": say("data.no_data", lang)}
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
    kind = say(f"data.kind.{mapping.kind}", lang) if mapping.kind in KINDS else ""
    fmt = say(f"data.format.{mapping.format}", lang) if mapping.format else ""
    enc = f", {table.encoding}" if table.encoding else ""
    if mapping.kind in KINDS:
        lines = [say("data.loaded", lang, name=state["name"], rows=table.input_rows, ftype=table.file_type.upper(),
                      enc=enc, kind=kind, fmt=fmt)]
    else:
        lines = [say("data.loaded.unknown", lang, name=state["name"], rows=table.input_rows,
                      ftype=table.file_type.upper(), enc=enc)]
    lines += [f"ℹ️ {n.text(lang)}" for n in sheet_notes(table)]
    if table.skipped:
        s = table.skipped[0]
        lines.append("⚠️ " + say("data.skipped", lang, n=len(table.skipped), first=s["number"],
                                  detail=s.get("detail") or s["reason"]))
    converted = state.get("converted")
    removed = converted.removed if converted else []
    # Answers labelled bad are set aside on purpose, not unusable: said as what they are.
    bad = sum(1 for r in removed if r.reason == "labelled_bad")
    unusable = len(removed) - len(table.skipped) - bad
    if unusable > 0:
        lines.append("⚠️ " + say("data.unusable", lang, n=unusable))
    if bad:
        lines.append("ℹ️ " + say("data.note.labelled_bad", lang, n=bad))
    return "\n\n".join(lines)


# ---- the preview and the expert's edits ----------------------------------------------------------

def _edited_rows(state: dict) -> list:
    rows = state["converted"].rows
    return apply_edits(rows, list(state["edits"].values())) if state["edits"] else rows


def _headers(lang: str) -> dict[str, str]:
    return {c: say(f"data.col.{c}", lang) for c in PREVIEW_COLUMNS}


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
        r["kind"] = say(f"data.rowkind.{r['kind']}", lang) if r["kind"] in ("dialog", "reasoning", "preference",
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
    back = {say(f"data.col.{c}", lang): c for c in PREVIEW_COLUMNS for lang in messages.languages()}
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
    return say("data.preview.count", lang, shown=shown, total=total, edits=len(state["edits"]),
                query=say("data.preview.query", lang, q=q) if q else "")


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
        cutoff_len=_cutoff(values.get("cutoff_len")),
        too_long=str(values.get("too_long") or d.too_long),
        min_chars=int(float(values.get("min_chars", d.min_chars) or 0)),
        pii=str(values.get("pii") or d.pii),
        fill_name=str(values.get("fill_name") or "").strip(),
        fill_author=str(values.get("fill_author") or "").strip(),
        memory_len=int(float(values["memory_len"])) if values.get("memory_len") else None)
    o.check()
    return o


def memory_bound(model: dict | None, hw: dict | None = None) -> int | None:
    """Tokens per row that fit in memory for the run the Model tab describes (ctx.model: the model, method,
    batch size, ... and the hardware it is planned for), per the run plan; the cutoff chosen from the data
    stays within it. None when the plan cannot tell (a model it cannot size) or the run does not fit at all."""
    from studio.config import RunConfig
    from studio.engine.settings import with_model
    from studio.plan import longest_fitting_length, target_hardware

    model = model or {}
    try:
        cfg = RunConfig.from_dict(with_model({}, {"name": "embedded", **model}))
        return longest_fitting_length(cfg, target_hardware(model.get("target"), hw))
    except StudioError:
        return None


def _cutoff(value) -> int | None:
    """The cutoff field: empty (or "auto") = chosen from the data and the model; 0 = keep every row."""
    if value is None or str(value).strip().lower() in ("", "auto", "nan"):
        return None
    return int(float(value))


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
        return {"ok": False, "state": state or new_state(), "error": say("data.no_data", lang)}
    try:
        o = clean_options(options)
    except StudioError as e:
        return {"ok": False, "state": state, "error": "⚠️ " + error_text(e, lang)}
    merge_edits(state, df)

    def step(fraction: float, desc: str):
        if progress:
            progress(fraction, desc)

    step(0.0, say("data.loading_tokenizer", lang))
    tok, tok_name, tok_note = tokenizer_for(model_name, lang)
    if tok is not None and o.cutoff_len is None:
        from studio.data.cutoff import model_context_length

        o.context_len = model_context_length(model_name if tok_name == model_name else tok_name, tok)
    rows = _edited_rows(state)
    try:
        result = clean(rows, o, tok, progress=lambda f, d: step(0.05 + 0.8 * f, f"{say('data.cleaning', lang)} "
                                                                               f"{messages.text_of(d, lang)}"))
        step(0.9, say("data.checking_template", lang))
        # The rows as they will be trained; a cutoff of 0 keeps every row, but training still cuts at 2048.
        template = check_template(result.rows, tok, result.cutoff_len or DEFAULT_CUTOFF)  # without a tokenizer: says so
        table, mapping = state["table"], Mapping.from_dict(state["mapping"])
        report = build_report(table, mapping, state["converted"], result, o, tok_name or None, template=template)
        if tok_note:
            add_notes(report, [tok_note], first=True)
        report["zh_share"] = round(chinese_share(result.rows), 3)
        advice = language_advice(report["zh_share"], model_name)
        report["language_advice"] = advice.to_dict() if advice else None
        report["edited_rows"] = sorted(state["edits"])
        folder = session_dir(session)
        cleaned_file = folder / "cleaned" / f"{Path(state['name']).stem or 'data'}.cleaned.jsonl"
        export_jsonl(result.rows, cleaned_file)
        report_file = cleaned_file.with_name("report.json")
        atomic_write_json(report_file, report)
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "state": state, "error": _error(e, lang)}
    state["clean"] = {"key": _clean_key(state, clean_options(options), model_name or "embedded"), "result": result,
                      "options": o,
                      "report": report, "template": template, "tokenizer": tok_name, "cleaned_file": str(cleaned_file)}
    step(1.0, "")
    return {"ok": True, "state": state, "error": "", "report": report,
            "report_md": report_markdown(report, lang, tok_name),
            "stats_md": stats_markdown(report, lang),
            "template_md": template_markdown(template, tok_name, lang, report["removed"].get("too_long", 0)),
            "cutoff_md": cutoff_markdown(report, lang), "cutoff": result.cutoff_len,
            "language_md": language_markdown(advice, lang),
            "figure": token_histogram(result.tokens_before, result.tokens_after, result.cutoff_len or None, lang)
            if result.tokens_before is not None else None,
            "rows_table": rows_frame(report, lang, {r.number: r.data for r in result.rows}),
            "rows_note": rows_note(report, lang),
            "cleaned_file": str(cleaned_file), "report_file": str(report_file)}


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
        return {"ok": False, "state": state or new_state(), "error": say("data.no_data", lang)}
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
            raise StudioError("data.error.no_rows_left")
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
    # zh_share: the Model tab says when the chosen model does not speak the data's language.
    data = {"train_file": str(folder / "train.jsonl"), "eval_file": eval_file, "format": fmt,
            "rows": len(mixed.train), "zh_share": round(chinese_share(mixed.train), 3)}
    c = mixed.counts
    mixed_words = say("data.used.mixed", lang, general=c["general"], refusals=c["refusals"]) \
        if c["general"] or c["refusals"] else ""
    lines = [say("data.used", lang, train=len(mixed.train), eval=len(mixed.eval), mixed=mixed_words,
                  fmt=say(f"data.format.{fmt}", lang))]
    if out.get("clean"):
        lines.append(say("data.used.recleaned", lang))
    if template is not None and template.cut:
        lines.append(say("data.template.cut", lang, n=len(template.cut), cutoff=template.cutoff,
                          **template.counts()))
    lines += [f"ℹ️ {n.text(lang)}" for n in mixed.notes]
    lines.append(say("data.used.saved", lang, folder=folder))
    files = [str(folder / "train.jsonl")] + ([eval_file] if eval_file else []) + [str(folder / "report.json")]
    out.update(ok=True, state=state, error="", use_md="\n\n".join(lines), data=data, files=files, folder=str(folder),
               prepared_report=report)
    return out




# ---- the browser's workspace (studio/workspace.py): what the tab needs to come back after a reload -----

def saved_part(state: dict, options: dict | None = None, mix: dict | None = None, cleaned: bool | None = None,
               previous: dict | None = None, sheet: str | None = None) -> dict | None:
    """The Data tab's part of the workspace: the file (this browser's copy), the mapping, the edits, the
    cleaning options and whether it was cleaned, the mix. Paths and choices only, never the rows."""
    if not state or not state.get("path"):
        return None
    prev = previous if previous and previous.get("path") == state["path"] else {}
    part = {"path": state["path"], "name": state.get("name", ""), "mapping": state.get("mapping") or {},
            "edits": state.get("edits") or {}, "query": state.get("query", ""),
            "options": options if options is not None else prev.get("options"),
            "mix": mix if mix is not None else prev.get("mix"),
            "cleaned": cleaned if cleaned is not None else bool(prev.get("cleaned")),
            "sheet": sheet if sheet is not None else prev.get("sheet")}
    return json.loads(json.dumps(part, default=str))  # plain JSON: row numbers become strings here


def restore(saved: dict | None, model_name: str | None, session: str, lang: str = "en") -> dict | None:
    """The Data tab as it was: the file read again, the mapping and edits applied, and cleaned again with the
    same options when it had been. None when there is nothing to restore (or the file is gone). Keys: those
    of load_data (the loaded view), and "clean" (run_clean's result) when it had been cleaned."""
    if not saved or not saved.get("path") or not Path(saved["path"]).is_file():
        return None
    res = load_data(saved["path"], session, lang, copy=False, sheet=saved.get("sheet") or None)
    if res["state"].get("table") is None:
        return res
    res["state"]["name"] = saved.get("name") or res["state"]["name"]  # the upload's own name, not its copy's
    mapping = saved.get("mapping") or {}
    if mapping.get("kind"):
        values = {"kind": mapping["kind"], "label_mode": mapping.get("label_mode") or "sft",
                  **{p: mapping.get(p) or "" for p in PARTS_OF_KIND.get(mapping["kind"], ())}}
        res = remap(res["state"], values, lang)
    if not res.get("ok"):
        return res
    st = res["state"]
    st["edits"] = {int(k): v for k, v in (saved.get("edits") or {}).items()}
    st["query"] = saved.get("query") or ""
    res["preview"] = preview_frame(st, st["query"], lang)
    if saved.get("cleaned") and saved.get("options"):
        res["clean"] = run_clean(st, None, saved["options"], model_name, lang, session)
    return res
