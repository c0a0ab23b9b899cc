"""The Data tab: upload a file (or pick a sample), check how its columns were read, correct rows in the
preview, clean it with a report, then split, mix and hand it to the Train tab.

The work is plain functions in studio.data.session (over a plain session dict) and studio.data.report_view
(the report as markdown and tables); `build(ctx)` only lays out components and maps them to those
functions, so the tests drive the tab without a browser.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from studio import messages, paths, workspace
from studio.data.clean import PII_MODES, TOO_LONG_MODES, CleanOptions
from studio.data.detect import KINDS, Mapping
from studio.data.report_view import column_widths
from studio.data.session import (PARTS, PARTS_OF_KIND, _safe_name, choose_sheet, load_data, memory_bound,
                                 merge_edits, new_state, preview_count, remap, restore, run_clean, sample_choices,
                                 saved_part, show_preview,
                                 upload_hint, use_for_training)
from studio.data.split_mix import MixOptions
from studio.errors import StudioError
from studio.paths import SAMPLES_DIR
from studio.ui.i18n import lang_of, t, text
from studio.ui.workspace import session_of
from studio.ui.priority import training_note

TITLE = t("data.tab")


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


# ---- the tab -------------------------------------------------------------------------------------

def _session(request: gr.Request | None) -> str:
    return session_of(request)


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
                                                                  ".xlsx", ".xls", ".ods", ".txt", ".md"], height=130,
                             elem_id="data-upload")
            hint_md = gr.Markdown(elem_id="data-upload-hint")
            sample = gr.Dropdown([(t(f"data.sample.{Path(p).stem}") if messages.has(f"data.sample.{Path(p).stem}")
                                   else label, p) for label, p in sample_choices()],
                                 value=None, label=t("data.sample"), elem_id="data-sample")
            sheet = gr.Dropdown([], value=None, label=t("data.sheet"), info=t("data.sheet.info"), visible=False,
                                elem_id="data-sheet")
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
                cutoff = gr.Number(None, precision=0, minimum=0, label=t("data.opt.cutoff_len.auto"),
                                   info=t("data.opt.cutoff_len.auto_info"), elem_id="data-cutoff")
                too_long = gr.Radio([(t(f"data.too_long.{m}"), m) for m in TOO_LONG_MODES], value=d.too_long,
                                    label=t("data.opt.too_long"), info=t("help.CleanOptions.too_long"),
                                    elem_id="data-too-long")
                min_chars = gr.Number(d.min_chars, precision=0, minimum=0, label=t("data.opt.min_chars"),
                                      info=t("help.CleanOptions.min_chars"))
                pii = gr.Radio([(t(f"data.pii.{m}"), m) for m in PII_MODES], value=d.pii, label=t("data.opt.pii"),
                               info=t("help.CleanOptions.pii"), elem_id="data-pii")
            with gr.Column(min_width=260):
                fill_name = gr.Textbox(label=t("data.opt.fill_name"), info=t("help.CleanOptions.fill_name"),
                                       elem_id="data-fill-name")
                fill_author = gr.Textbox(label=t("data.opt.fill_author"), info=t("help.CleanOptions.fill_author"),
                                         elem_id="data-fill-author")
        clean_btn = gr.Button(t("data.clean"), variant="primary", elem_id="data-clean")

        with gr.Column(visible=False) as report_col:
            gr.Markdown(t("data.report"))
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=380):
                    language_md = gr.Markdown(elem_id="data-language")
                    report_md = gr.Markdown(elem_id="data-report")
                    cutoff_md = gr.Markdown(elem_id="data-cutoff-choice")
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

    mapping_inputs = [kind, *parts.values(), label_mode]
    option_inputs = {"fix_mojibake": fix_mojibake, "drop_garbled": drop_garbled, "dedup": dedup, "near_dup": near_dup,
                     "near_dup_threshold": threshold, "cutoff_len": cutoff, "too_long": too_long,
                     "min_chars": min_chars, "pii": pii, "fill_name": fill_name, "fill_author": fill_author}
    mix_inputs = {"eval_share": eval_share, "general_share": general_share, "refusal_share": refusal_share,
                  "reasoning_share": reasoning_share, "seed": seed}
    report_outputs = [report_col, language_md, report_md, cutoff_md, template_md, plot, stats_md, rows_table, rows_md,
                      download, download_report]

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
        return {report_col: gr.Column(visible=False), language_md: "", report_md: "", cutoff_md: "", template_md: "",
                plot: None, stats_md: "",
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
        if "sheets" in res or table is None:  # a new file or sheet: the choice of sheets, when the workbook's sheets differ
            names = res.get("sheets") or []
            sheets = {s_["name"]: s_ for s_ in table.sheets} if table is not None else {}
            out[sheet] = gr.Dropdown([(text("data.sheets.item", lang, name=n, rows=sheets[n]["rows"]), n) for n in names],
                                     value=next((n for n in names if sheets[n]["read"]), None), visible=bool(names))
        return out

    load_outputs = [state, error_md, info_md, mapping_col, work_col, kind, *parts.values(), label_mode, preview,
                    count_md, search, use_md, files, sheet, *report_outputs]

    def remember(st: dict, request: gr.Request, **part) -> None:
        """This browser's Data tab into its workspace (studio/workspace.py): a reload brings it back."""
        session = _session(request)
        previous = workspace.load(session).get("data_tab")
        workspace.save(session, data_tab=saved_part(st, previous=previous, **part))

    def restore_view(ws: dict, lang: str, session: str) -> dict:
        """The page opens: the file, mapping, edits, options and cleaning this browser had, in its language."""
        out = {hint_md: upload_hint(lang)}
        saved = ws.get("data_tab") or {}
        res = restore(saved, (ws.get("model") or {}).get("model") or "embedded", session, lang)
        if res is None:
            return out
        out.update(loaded_view(res, lang))
        out[search] = saved.get("query") or ""
        out.update({c: saved["options"][n] for n, c in option_inputs.items() if n in (saved.get("options") or {})})
        out.update({c: saved["mix"][n] for n, c in mix_inputs.items() if n in (saved.get("mix") or {})})
        if res.get("clean"):
            out.update(report_view(res["clean"], lang, session))
        return out

    ctx.on_restore(restore_view, [hint_md, *load_outputs, *option_inputs.values(), *mix_inputs.values()])

    def remember_choices(values: dict, request: gr.Request):
        remember(values[state], request, options={n: values[c] for n, c in option_inputs.items()},
                 mix={n: values[c] for n, c in mix_inputs.items()})

    gr.on([c.input for c in (*option_inputs.values(), *mix_inputs.values())], remember_choices,
          {state, *option_inputs.values(), *mix_inputs.values()}, None, trigger_mode="always_last",
          show_progress="hidden")

    def on_upload(f, request: gr.Request, progress=gr.Progress()):
        lang = lang_of(request)
        try:  # only gradio's upload folder on a public Space (studio.paths.confine)
            path = str(paths.confine(_file_path(f))) if f else None
        except StudioError as e:
            return {error_md: "⚠️ " + e.text(lang)}
        progress(0, desc=text("data.reading", lang) + training_note(lang))
        res = load_data(path, _session(request), lang)
        remember(res["state"], request, cleaned=False)
        return {**loaded_view(res, lang), sample: None}

    def on_sample(path, request: gr.Request):
        lang = lang_of(request)
        if not path or Path(path).resolve().parent != SAMPLES_DIR.resolve():  # only the bundled samples
            return {error_md: gr.skip()}
        res = load_data(path, _session(request), lang, copy=False)
        remember(res["state"], request, cleaned=False)
        return {**loaded_view(res, lang), upload: None}

    upload.upload(on_upload, upload, [*load_outputs, sample])
    sample.input(on_sample, sample, [*load_outputs, upload])

    def on_sheet(st, name, request: gr.Request, progress=gr.Progress()):
        lang = lang_of(request)
        if not name:
            return {error_md: gr.skip()}
        progress(0, desc=text("data.reading", lang) + training_note(lang))
        res = choose_sheet(st, name, lang)
        remember(res["state"], request, cleaned=False, sheet=name)
        return loaded_view(res, lang)

    sheet.input(on_sheet, [state, sheet], load_outputs)

    def on_remap(values: dict, request: gr.Request):
        lang = lang_of(request)
        vals = {"kind": values[kind], "label_mode": values[label_mode], **{p: values[dd] for p, dd in parts.items()}}
        res = remap(values[state], vals, lang)
        remember(res["state"], request, cleaned=False)
        return loaded_view(res, lang)

    gr.on([c.input for c in mapping_inputs], on_remap, {state, *mapping_inputs}, load_outputs,
          trigger_mode="always_last")

    def on_search(st, df, q, request: gr.Request):
        lang = lang_of(request)
        res = show_preview(st, df, q, lang)
        remember(res["state"], request)
        return {state: res["state"], count_md: res["count_md"],
                preview: gr.Dataframe(value=res["preview"], column_widths=column_widths(res["preview"]))}

    search.submit(on_search, [state, preview, search], [state, preview, count_md])

    def on_edit(st, df, request: gr.Request):
        merge_edits(st, df)
        remember(st, request, cleaned=False)  # an edit makes the last cleaning stale
        return {state: st, count_md: preview_count(st, lang_of(request))}

    preview.input(on_edit, [state, preview], [state, count_md], show_progress="hidden", trigger_mode="always_last")

    def model_name_of(model: dict | None) -> str:
        return (model or {}).get("name") or "embedded"

    def report_view(res: dict, lang: str, session: str) -> dict:
        if not res["ok"]:
            return {state: res["state"], error_md: res["error"]}
        return {state: res["state"], error_md: "", report_col: gr.Column(visible=True), report_md: res["report_md"],
                language_md: res["language_md"], cutoff_md: res["cutoff_md"],
                template_md: res["template_md"], stats_md: res["stats_md"], plot: res["figure"],
                rows_table: gr.Dataframe(value=res["rows_table"], visible=len(res["rows_table"]) > 0,
                                         column_widths=["64px", "96px", "130px", "30%", "40%"]),
                rows_md: res["rows_note"],
                download: gr.DownloadButton(value=servable(res["cleaned_file"], session), visible=True),
                download_report: gr.DownloadButton(value=servable(res["report_file"], session), visible=True),
                count_md: preview_count(res["state"], lang)}

    def options_of(values: dict) -> dict:
        # The cutoff chosen from the data stays within what fits in memory for the Model tab's run.
        return {**{n: values[c] for n, c in option_inputs.items()}, "memory_len": memory_bound(values[ctx.model])}

    def on_clean(values: dict, request: gr.Request, progress=gr.Progress()):
        lang, session = lang_of(request), _session(request)
        opts = options_of(values)
        res = run_clean(values[state], values[preview], opts, model_name_of(values[ctx.model]), lang, session,
                        progress=lambda f, desc: progress(f, desc=desc + training_note(lang)))
        remember(res["state"], request, options=opts, cleaned=res["ok"])
        return report_view(res, lang, session)

    clean_btn.click(on_clean, {state, preview, ctx.model, *option_inputs.values()},
                    [state, error_md, count_md, *report_outputs], concurrency_limit=2, concurrency_id="data-clean")

    def on_use(values: dict, request: gr.Request, progress=gr.Progress()):
        lang, session = lang_of(request), _session(request)
        opts = options_of(values)
        mix = {n: values[c] for n, c in mix_inputs.items()}
        res = use_for_training(values[state], values[preview], opts, mix, model_name_of(values[ctx.model]), lang,
                               session, progress=lambda f, desc: progress(f, desc=desc + training_note(lang)))
        if not res["ok"]:
            return {state: res["state"], error_md: res["error"], use_md: res["error"]}
        remember(res["state"], request, options=opts, mix=mix, cleaned=True)
        out = report_view(res, lang, session) if res.get("clean") else {state: res["state"], error_md: ""}
        out.update({use_md: res["use_md"], ctx.data: res["data"],
                    files: gr.File(value=[servable(f, session) for f in res["files"]], visible=True)})
        return out

    use_btn.click(on_use, {state, preview, ctx.model, *option_inputs.values(), *mix_inputs.values()},
                  [state, error_md, count_md, use_md, files, ctx.data, *report_outputs],
                  concurrency_limit=2, concurrency_id="data-clean")

    # The cutoff no longer follows the Model tab's sequence length: left empty, it is chosen from the data,
    # the model's context and what fits in memory (studio.data.cutoff), and the report says what a higher
    # or lower one costs.

    return {"upload": upload, "sample": sample, "kind": kind, "parts": parts, "preview": preview, "clean": clean_btn,
            "use": use_btn, "sheet": sheet, "report": report_md, "plot": plot, "rows": rows_table, "state": state}
