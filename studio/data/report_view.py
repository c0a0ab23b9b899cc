"""The cleaning report as people read it: markdown in the page's language and tables of plain records.
Plain functions over the JSON report (studio.data.pipeline.build_report), so the Data tab only places
what they return; every sentence comes from the message catalog.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from studio import messages
from studio.data.rows import texts
from studio.messages import say, text_of

TABLE_ROWS = 500  # removed / changed rows listed in the tab; report.json lists them all
TEMPLATE_LIST = 8  # template problems listed by row number in the tab
REASONS = ("empty", "duplicate", "near_duplicate", "garbled", "too_long", "too_short", "personal_data", "unparseable",
           "malformed", "identical_pair", "labelled_bad", "unpaired", "rebalanced")
PREVIEW_COLUMNS = ("number", "kind", "system", "prompt", "answer", "chosen", "rejected", "text")


def _model_label(name: str) -> str:
    if name == "embedded":
        return "SmolLM2-135M-Instruct (embedded)"
    return Path(name).name if Path(name).expanduser().is_dir() else name



def _detail(item: dict, lang: str) -> str:
    """A report entry's detail in the page's language: its catalog message, else its English text."""
    return text_of(item.get("message") or item.get("detail") or "", lang)


def _reason(r: str, lang: str) -> str:
    return say(f"data.reason.{r}", lang) if messages.has(f"data.reason.{r}") else r.replace("_", " ")


def report_markdown(report: dict, lang: str = "en", tokenizer_name: str | None = None) -> str:
    removed = report["removed"]
    changed = report["changed"]
    lines = [say("data.summary", lang, inp=report["input_rows"], out=report["output_rows"],
                  removed=sum(removed.values()), changed=sum(changed.values()),
                  flagged=report["flagged"]["personal_data"])]
    if report.get("edited_rows"):
        lines.append("✏️ " + say("data.summary.edits", lang, n=len(report["edited_rows"])))
    table = [say("data.counts.head", lang)]
    order = [r for r in REASONS if r in removed] + [r for r in removed if r not in REASONS]
    for r in order:
        n = removed[r]
        why = f" · {say(f'data.why.{r}', lang)}" if messages.has(f"data.why.{r}") else ""
        table.append(f"| **{_reason(r, lang)}**{why} | {'**' + str(n) + '**' if n else 0} |")
    lines.append("\n".join(table))
    parts = [f"{say(f'data.changed.{k}', lang) if messages.has(f'data.changed.{k}') else k} {v}"
             for k, v in changed.items() if v]
    lines.append(say("data.changed", lang, parts=" · ".join(parts)) if parts else say("data.changed.none", lang))
    if tokenizer_name:
        lines.append(say("data.tokenizer", lang, name=_model_label(tokenizer_name)))
    else:
        lines.append(say("data.tokenizer.none", lang))
    notes = [text_of(n, lang) for n in report.get("note_messages") or report.get("notes") or []]
    notes = [n.get("text") if isinstance(n, dict) else n for n in notes]
    if notes:
        lines.append(f"**{say('data.notes', lang)}**\n\n" + "\n".join(f"- {n}" for n in notes))
    return "\n\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else "<1%"


def stats_markdown(report: dict, lang: str = "en") -> str:
    b, a = report["stats"]["before"], report["stats"]["after"]
    rows = [say("data.stats.head", lang), f"| {say('data.stats.rows', lang)} | {b['rows']} | {a['rows']} |"]
    if b["tokens"] and a["tokens"]:
        def tok(s):
            t_ = s["tokens"]
            return f"{t_['mean']:.0f} / {t_['median']:.0f} / {t_['p95']:.0f} / {t_['max']}"
        rows.append(f"| {say('data.stats.tokens', lang)} | {tok(b)} | {tok(a)} |")
        rows.append(f"| {say('data.stats.total', lang)} | {b['tokens']['total']:,} | {a['tokens']['total']:,} |")
    rows.append(f"| {say('data.stats.chars', lang)} | {b['chars']['mean']:.0f} / {b['chars']['max']} | "
                f"{a['chars']['mean']:.0f} / {a['chars']['max']} |")
    out = ["\n".join(rows)]
    sampled = (b.get("tokens") or {}).get("sampled_rows")
    if sampled:
        out.append(say("data.stats.sampled", lang, n=sampled))
    mix = report["language"]
    out.append(say("data.language", lang, zh=_pct(mix["zh"]), en=_pct(mix["en"]), other=_pct(mix["other"])))
    return "\n\n".join(out)


def template_markdown(template, tokenizer_name: str | None, lang: str = "en", too_long: int = 0) -> str:
    """The template check of the rows as trained: rows the template refuses, answers the cutoff would cut
    (counted, the first rows listed), or all fine. `too_long`: rows already removed for their length."""
    head = say("data.template", lang)
    if template is None:
        return f"{head}\n\n{say('data.template.none', lang)}"
    if template.problem:
        return f"{head}\n\n{say('data.template.problem', lang, problem=text_of(template.problem, lang))}"
    removed = f" {say('data.template.removed', lang, n=too_long)}" if too_long else ""
    if template.ok:
        return f"{head}\n\n" + say("data.template.ok", lang, n=template.checked,
                                     name=_model_label(tokenizer_name or "embedded"), cutoff=template.cutoff) + removed
    parts = [head]
    for items, key, field_ in ((template.failed, "data.template.failed", "error"),
                               (template.cut, "data.template.cut", "detail")):
        if not items:
            continue
        lines = [say(key, lang, n=len(items), cutoff=template.cutoff, **template.counts())]
        lines += [f"- {say('data.template.row', lang, number=i['number'], detail=_detail(i, lang) if field_ == 'detail' else i[field_])}"
                  for i in items[:TEMPLATE_LIST]]
        if len(items) > TEMPLATE_LIST:
            lines.append(f"- {say('data.template.more', lang, n=len(items) - TEMPLATE_LIST)}")
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
    out = [(r["number"], "removed", r["reason"], r, _row_text(r.get("row"))) for r in report["removed_rows"]]
    out += [(c["number"], "changed", c["reason"], f"{c['before']} → {c['after']}" if c.get("before") or c.get("after")
             else "", _row_text(kept.get(c["number"]))) for c in report["changed_rows"] if c["reason"] != "normalized"]
    out += [(f["number"], "flagged", f["reason"], f, _row_text(kept.get(f["number"])))
            for f in report["flagged_rows"]]
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def rows_frame(report: dict, lang: str = "en", kept: dict | None = None) -> pd.DataFrame:
    """Every row removed, changed (except plain whitespace normalisation) or flagged, with why."""
    rows = _all_report_rows(report, kept)[:TABLE_ROWS]
    cols = [say(f"data.col.{c}", lang) for c in ("number", "action", "reason", "detail", "row")]
    return pd.DataFrame([[n, say(f"data.action.{a}", lang), _reason(r, lang),
                          (_detail(d, lang) if isinstance(d, dict) else d)[:300], s] for n, a, r, d, s in rows],
                        columns=cols)


def rows_note(report: dict, lang: str = "en") -> str:
    total = len(_all_report_rows(report))
    if not total:
        return say("data.rows_table.none", lang)
    return say("data.rows_table.more", lang, shown=TABLE_ROWS, total=total) if total > TABLE_ROWS else ""


_WIDTH_WEIGHTS = {"system": 1, "prompt": 2, "answer": 3, "chosen": 2, "rejected": 2, "text": 1}


def column_widths(df: pd.DataFrame | None) -> list[str] | None:
    """The preview's widths: narrow row number and kind, the texts sharing the rest (answers widest)."""
    if df is None or not len(df.columns):
        return None
    back = {say(f"data.col.{c}", lang): c for c in PREVIEW_COLUMNS for lang in messages.languages()}
    cols = [back.get(str(h), str(h)) for h in df.columns]
    total = sum(_WIDTH_WEIGHTS.get(c, 0) for c in cols) or 1
    return [{"number": "56px", "kind": "96px"}.get(c) or f"{round(84 * _WIDTH_WEIGHTS.get(c, 1) / total)}%"
            for c in cols]




def cutoff_markdown(report: dict, lang: str = "en") -> str:
    """How the cutoff was chosen and what a higher or lower one costs, when it was chosen from the data;
    for plain text, the block length (how many documents became how many blocks is in the report's notes)."""
    c = report.get("cutoff") or {}
    lines = [text_of(m, lang) for m in c.get("messages", [])]
    if report.get("text") and c.get("cutoff_len"):
        lines.append(say("data.cutoff.blocks", lang, cutoff=c["cutoff_len"]))
    return "\n".join(f"- {x}" for x in lines)


def language_markdown(advice, lang: str = "en") -> str:
    """The data and model language advice (studio.data.language.language_advice), or ''."""
    return f"⚠️ {text_of(advice, lang)}" if advice else ""
