"""The Compare tab: a blind A/B test of the base and fine-tuned models, its tally, 1-5 ratings, the data
flywheel (winning answers -> DPO pairs), and the automatic checks on the validation split.

Layout only. The work is in plain functions the CLI and tests call too: studio.evaluate.blind (the blind
round: which model is A lives only in the run's Arena on the server; the session keeps a round id, a
random token, in a gr.State), studio.evaluate.views (tallies and results as tables and sentences) and
studio.evaluate.runner (the checks, with progress). They return dicts keyed by names ("answer_a",
"tally_md", ...); `build(ctx)` maps those names to components. A voter is the anonymous hash of a random
token the browser keeps in its localStorage (gr.BrowserState), so a reload is still one voter.
"""

from __future__ import annotations

import gradio as gr

from studio.evaluate.blind import (_messages, ask, describe_run, open_run, rate, sample_prompt, save_preferences,
                                   use_for_dpo, vote, voter_of)
from studio.evaluate.runner import export, run_consistency, run_edge_cases, run_general, run_scores
from studio.evaluate.runs import checked_run, default_run, followed_run, run_choices
from studio.evaluate.views import checks_view, tally_view
from studio.ui.i18n import lang_of, t, text
from studio.ui.workspace import session_of

__all__ = ["TITLE", "build", "_messages", "ask", "checked_run", "checks_view", "default_run", "describe_run",
           "export", "open_run", "rate", "run_choices", "run_consistency", "run_edge_cases", "run_scores",
           "sample_prompt", "save_preferences", "servable", "tally_view", "text", "use_for_dpo", "vote", "voter_of"]

TITLE = t("compare.tab")
CHOICES = ("A", "B", "tie", "both_bad")
SCORES = ["1", "2", "3", "4", "5"]
# An empty chart or table is hidden, not drawn blank.
SHOWN_WITH_VALUE = {"tally_plot", "ratings_plot", "ratings_table", "metrics_plot", "metrics_table", "rows_table",
                    "consistency_plot", "consistency_table", "edge_table", "files", "progress", "general_table"}


def _session(request: gr.Request | None) -> str:
    return session_of(request)


def servable(path: str, session: str) -> str:
    from studio.ui.data_tab import servable as serve

    return serve(path, session)


def build(ctx) -> dict:
    # A random token kept in the browser's localStorage, so that a reload is the same voter. The secret only
    # scrambles it there (Gradio sends it to the page): a fixed one keeps voters across server restarts.
    voter_token = gr.BrowserState(None, storage_key="studio-compare-voter", secret="studio-compare-voter")
    voter = gr.State("")  # the anonymous id derived from it (set by on_load); the server side only
    round_state = gr.State(None)  # the round id only; the sides stay in the Arena
    sampled = gr.State(None)  # the sampled validation conversation behind the prompt box
    preferences = gr.State({})

    run_dd = gr.Dropdown(choices=run_choices(), value=None, label=t("compare.run"), elem_id="compare-run")
    with gr.Row(equal_height=False):
        with gr.Column(scale=8):
            run_md = gr.Markdown(elem_id="compare-run-info")
        refresh_btn = gr.Button(t("compare.refresh"), scale=1, min_width=100, size="sm", elem_id="compare-refresh")

    with gr.Tabs():
        with gr.Tab(t("compare.tab.arena"), id="compare-arena"):
            gr.Markdown(t("compare.arena.intro"))
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    prompt = gr.Textbox(label=t("compare.prompt"), placeholder=t("compare.prompt.placeholder"), lines=3,
                                        max_lines=12, elem_id="compare-prompt")
                    with gr.Row():
                        sample_btn = gr.Button(t("compare.sample"), elem_id="compare-sample")
                        ask_btn = gr.Button(t("compare.ask"), variant="primary", elem_id="compare-ask")
                with gr.Column(scale=2):
                    with gr.Accordion(t("compare.settings"), open=True):
                        max_new_tokens = gr.Slider(16, 1024, 128, step=16, label=t("compare.max_new_tokens"),
                                                   info=t("compare.max_new_tokens.info"), elem_id="compare-max-tokens")
                        temperature = gr.Slider(0, 1.5, 0.0, step=0.05, label=t("compare.temperature"),
                                                info=t("compare.temperature.info"), elem_id="compare-temperature")
                        seed = gr.Number(0, label=t("compare.seed"), info=t("compare.seed.info"), precision=0,
                                         elem_id="compare-seed")
            status_md = gr.Markdown(elem_id="compare-status")
            with gr.Row(equal_height=True):
                answer_a = gr.Textbox(label=t("compare.answer_a"), lines=8, max_lines=24, interactive=False,
                                      buttons=["copy"], elem_id="compare-answer-a")
                answer_b = gr.Textbox(label=t("compare.answer_b"), lines=8, max_lines=24, interactive=False,
                                      buttons=["copy"], elem_id="compare-answer-b")
            mode = gr.Radio([(t("compare.mode.vote"), "vote"), (t("compare.mode.rate"), "rate")], value="vote",
                            label=t("compare.mode"), elem_id="compare-mode")
            with gr.Row(visible=True) as vote_row:
                vote_btns = {c: gr.Button(t(f"compare.vote.{c}"), interactive=False, elem_id=f"compare-vote-{c}")
                             for c in CHOICES}
            with gr.Row(visible=False, equal_height=True) as rate_row:
                score_a = gr.Radio(SCORES, label=t("compare.rate_a"), elem_id="compare-score-a")
                score_b = gr.Radio(SCORES, label=t("compare.rate_b"), elem_id="compare-score-b")
                rate_btn = gr.Button(t("compare.rate_submit"), interactive=False, elem_id="compare-rate")
            reveal_md = gr.Markdown(elem_id="compare-reveal")

            gr.Markdown(t("compare.tally.title"))
            gr.Markdown(t("compare.tally.info"), elem_classes="compare-note")
            tally_md = gr.Markdown(elem_id="compare-tally")
            tally_table = gr.Dataframe(interactive=False, show_label=False, elem_id="compare-tally-table")
            tally_plot = gr.Plot(show_label=False, visible=False, elem_id="compare-tally-plot")
            with gr.Accordion(t("compare.ratings.title"), open=False, elem_id="compare-ratings"):
                ratings_md = gr.Markdown()
                ratings_table = gr.Dataframe(interactive=False, show_label=False, visible=False)
                ratings_plot = gr.Plot(show_label=False, visible=False)

            gr.Markdown(t("compare.flywheel.title"))
            gr.Markdown(t("compare.flywheel.info"), elem_classes="compare-note")
            with gr.Row():
                save_btn = gr.Button(t("compare.save_prefs"), elem_id="compare-save-prefs")
                use_btn = gr.Button(t("compare.use_prefs"), interactive=False, elem_id="compare-use-prefs")
            flywheel_md = gr.Markdown(elem_id="compare-flywheel")

        with gr.Tab(t("compare.tab.checks"), id="compare-checks"):
            gr.Markdown(t("compare.checks.intro"))
            progress = gr.HTML(visible=False, elem_id="compare-progress")
            checks_status = gr.Markdown(elem_id="compare-checks-status")

            gr.Markdown(t("compare.scores.title"))
            gr.Markdown(t("compare.scores.info"), elem_classes="compare-note")
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=240):
                    max_rows = gr.Number(20, label=t("compare.max_rows"), precision=0, minimum=0,
                                         elem_id="compare-max-rows")
                    rows_hint = gr.Markdown(elem_id="compare-rows-hint")
                    score_btn = gr.Button(t("compare.score"), variant="primary", elem_id="compare-score")
                with gr.Column(scale=3):
                    scores_md = gr.Markdown(elem_id="compare-scores")
                    metrics_table = gr.Dataframe(interactive=False, show_label=False, visible=False,
                                                 elem_id="compare-metrics-table")
            metrics_plot = gr.Plot(show_label=False, visible=False, elem_id="compare-metrics-plot")
            with gr.Accordion(t("compare.rows_detail"), open=False):
                rows_table = gr.Dataframe(interactive=False, wrap=True, max_height=400, show_label=False, visible=False)

            gr.Markdown(t("compare.consistency.title"))
            gr.Markdown(t("compare.consistency.info"), elem_classes="compare-note")
            with gr.Row(equal_height=True):
                times = gr.Slider(2, 10, 5, step=1, label=t("compare.times"), scale=2)
                n_prompts = gr.Number(5, label=t("compare.n_prompts"), precision=0, minimum=1, scale=1)
            consistency_btn = gr.Button(t("compare.consistency"), variant="primary", elem_id="compare-consistency")
            consistency_md = gr.Markdown(elem_id="compare-consistency-result")
            consistency_plot = gr.Plot(show_label=False, visible=False)
            consistency_table = gr.Dataframe(interactive=False, wrap=True, max_height=400, show_label=False,
                                             visible=False)

            gr.Markdown(t("compare.edge.title"))
            gr.Markdown(t("compare.edge.info"), elem_classes="compare-note")
            edge_prompts = gr.Textbox(label=t("compare.edge.prompts"), placeholder=t("compare.edge.placeholder"), lines=4,
                                      elem_id="compare-edge-prompts")
            edge_btn = gr.Button(t("compare.edge"), variant="primary", elem_id="compare-edge")
            edge_md = gr.Markdown(elem_id="compare-edge-result")
            edge_table = gr.Dataframe(interactive=False, wrap=True, max_height=400, show_label=False, visible=False)

            gr.Markdown(t("compare.general.title"))
            gr.Markdown(t("compare.general.info"), elem_classes="compare-note")
            general_btn = gr.Button(t("compare.general"), variant="primary", elem_id="compare-general")
            general_md = gr.Markdown(elem_id="compare-general-result")
            general_table = gr.Dataframe(interactive=False, show_label=False, visible=False,
                                         elem_id="compare-general-table")

            export_btn = gr.Button(t("compare.export"), elem_id="compare-export")
            files = gr.File(label=t("compare.files"), file_count="multiple", interactive=False, visible=False,
                            elem_id="compare-files")

    comps = {
        "run_md": run_md, "round": round_state, "sampled": sampled, "prompt": prompt, "status": status_md,
        "answer_a": answer_a, "answer_b": answer_b, "reveal": reveal_md, "scores": score_a,
        "tally_md": tally_md, "tally_plot": tally_plot, "tally_table": tally_table, "ratings_md": ratings_md,
        "ratings_plot": ratings_plot, "ratings_table": ratings_table, "flywheel": flywheel_md,
        "preferences": preferences, "data": ctx.data, "progress": progress, "checks_status": checks_status,
        "scores_md": scores_md, "metrics_plot": metrics_plot, "metrics_table": metrics_table, "rows_table": rows_table,
        "consistency_md": consistency_md, "consistency_plot": consistency_plot, "consistency_table": consistency_table,
        "edge_md": edge_md, "edge_table": edge_table, "files": files, "max_rows": max_rows, "rows_hint": rows_hint,
        "general_md": general_md, "general_table": general_table,
    }
    toggles = {"vote_ready": list(vote_btns.values()), "rate_ready": [rate_btn], "use_ready": [use_btn]}

    def outputs(*names) -> list:
        out = []
        for n in names:
            out += toggles.get(n) or [comps[n]]
        if "scores" in names:
            out.append(score_b)
        return out

    def ui(values: dict) -> dict:
        """A handler's named values -> {component: value}."""
        out = {}
        for name, v in values.items():
            if name in toggles:
                out.update({b: gr.Button(interactive=bool(v)) for b in toggles[name]})
            elif name == "scores":  # a new round clears both score radios
                out[score_a], out[score_b] = v, v
            elif name in SHOWN_WITH_VALUE:  # an empty chart or table is hidden, not drawn blank
                comp = comps[name]
                shown = v is not None and not (isinstance(v, str) and not v) and not (hasattr(v, "empty") and v.empty)
                out[comp] = type(comp)(value=v, visible=shown)
            elif name in comps:
                out[comps[name]] = v
        return out

    tally_names = ("tally_md", "tally_plot", "tally_table", "ratings_md", "ratings_plot", "ratings_table")
    check_names = ("scores_md", "metrics_plot", "metrics_table", "rows_table", "consistency_md", "consistency_plot",
                   "consistency_table", "edge_md", "edge_table", "progress", "checks_status", "files", "max_rows",
                   "rows_hint", "general_md", "general_table")
    open_names = ("run_md", "round", "answer_a", "answer_b", "reveal", "status", "vote_ready", "rate_ready", "sampled",
                  "flywheel", "preferences", "use_ready", *tally_names, *check_names)

    # ---- choosing the run
    def on_load(kept=None, request: gr.Request = None):
        # No triggers, so this runs on page load only; every State is fresh then (ctx.run included).
        token, voter_id = voter_of(kept)
        value = default_run(None)
        return {voter_token: token, voter: voter_id, run_dd: gr.Dropdown(choices=run_choices(), value=value),
                **ui(open_run(value, voter_id, lang_of(request)))}

    gr.on(None, on_load, [voter_token], [voter_token, voter, run_dd, *outputs(*open_names)], show_progress="hidden")

    def on_run(value, voter_id, request: gr.Request):
        return ui(open_run(value, voter_id, lang_of(request)))

    run_dd.input(on_run, [run_dd, voter], outputs(*open_names), show_progress="hidden")

    def on_ctx_run(current, value, voter_id, request: gr.Request):
        """The Train tab opened or finished a run: follow it here once it has a model."""
        choices, want, changed = followed_run(current, value)
        out = {run_dd: gr.Dropdown(choices=choices, value=want)}
        if changed:
            out.update(ui(open_run(want, voter_id, lang_of(request))))
        return out

    ctx.run.change(on_ctx_run, [ctx.run, run_dd, voter], [run_dd, *outputs(*open_names)], show_progress="hidden")

    def on_refresh(value, voter_id, request: gr.Request):
        lang = lang_of(request)
        return {run_dd: gr.Dropdown(choices=run_choices(), value=value), run_md: describe_run(value, lang),
                **ui(tally_view(value, voter_id, lang))}

    refresh_btn.click(on_refresh, [run_dd, voter], [run_dd, run_md, *outputs(*tally_names)], show_progress="hidden")

    # ---- the blind round
    def on_sample(value, request: gr.Request):
        return ui(sample_prompt(value, lang_of(request)))

    sample_btn.click(on_sample, run_dd, outputs("prompt", "sampled", "status"), show_progress="hidden")

    def on_ask(value, text_, conv, tokens, temp, seed_, request: gr.Request):
        for update in ask(value, text_, conv, tokens, temp, seed_, lang_of(request)):
            yield ui(update)

    round_outputs = outputs("round", "answer_a", "answer_b", "status", "reveal", "vote_ready", "rate_ready", "scores")
    gr.on([ask_btn.click, prompt.submit], on_ask, [run_dd, prompt, sampled, max_new_tokens, temperature, seed],
          round_outputs, show_progress="hidden", api_name="compare_ask")

    def make_vote(choice):
        def on_vote(value, rid, voter_id, request: gr.Request):
            return ui(vote(value, rid, choice, voter_id, lang_of(request)))
        return on_vote

    for choice, btn in vote_btns.items():
        btn.click(make_vote(choice), [run_dd, round_state, voter], outputs("reveal", "vote_ready", "run_md", *tally_names),
                  show_progress="hidden", api_name=f"compare_vote_{choice}")

    def on_rate(value, rid, voter_id, a, b, request: gr.Request):
        return ui(rate(value, rid, voter_id, a, b, lang_of(request)))

    rate_btn.click(on_rate, [run_dd, round_state, voter, score_a, score_b],
                   outputs("reveal", "rate_ready", "run_md", *tally_names), show_progress="hidden", api_name="compare_rate")

    def on_mode(m):
        return {vote_row: gr.Row(visible=m == "vote"), rate_row: gr.Row(visible=m == "rate")}

    mode.change(on_mode, mode, [vote_row, rate_row], show_progress="hidden")

    # ---- the data flywheel
    def on_save(value, request: gr.Request):
        return ui(save_preferences(value, lang_of(request), _session(request)))

    save_btn.click(on_save, run_dd, outputs("flywheel", "preferences", "use_ready"))

    def on_use(prefs, request: gr.Request):
        return ui(use_for_dpo(prefs, lang_of(request)))

    use_btn.click(on_use, preferences, outputs("flywheel", "data"))

    # ---- automatic checks: one at a time per server (each is long, and holds the device batch by batch)
    def on_scores(value, rows_, tokens, request: gr.Request):
        for update in run_scores(value, rows_, tokens, lang_of(request)):
            yield ui(update)

    score_btn.click(on_scores, [run_dd, max_rows, max_new_tokens],
                    outputs("progress", "checks_status", "scores_md", "metrics_plot", "metrics_table", "rows_table",
                            "rows_hint"),
                    show_progress="hidden", concurrency_limit=1, concurrency_id="compare-checks")

    def on_consistency(value, n, k, tokens, temp, seed_, request: gr.Request):
        for update in run_consistency(value, n, k, tokens, temp, seed_, lang_of(request)):
            yield ui(update)

    consistency_btn.click(on_consistency, [run_dd, times, n_prompts, max_new_tokens, temperature, seed],
                          outputs("progress", "checks_status", "consistency_md", "consistency_plot", "consistency_table"),
                          show_progress="hidden", concurrency_limit=1, concurrency_id="compare-checks")

    def on_edge(value, lines, tokens, temp, seed_, request: gr.Request):
        for update in run_edge_cases(value, lines, tokens, temp, seed_, lang_of(request)):
            yield ui(update)

    edge_btn.click(on_edge, [run_dd, edge_prompts, max_new_tokens, temperature, seed],
                   outputs("progress", "checks_status", "edge_md", "edge_table"),
                   show_progress="hidden", concurrency_limit=1, concurrency_id="compare-checks")

    def on_general(value, request: gr.Request):
        for update in run_general(value, lang_of(request)):
            yield ui(update)

    general_btn.click(on_general, run_dd, outputs("progress", "checks_status", "general_md", "general_table"),
                      show_progress="hidden", concurrency_limit=1, concurrency_id="compare-checks")

    def on_export(value, request: gr.Request):
        session = _session(request)
        out = export(value, lang_of(request), session)
        if out.get("files"):  # served from a temp folder of this session's (gradio serves no other folder)
            out["files"] = [servable(f, session) for f in out["files"]]
        return ui(out)

    export_btn.click(on_export, run_dd, outputs("checks_status", "files"))

    return {"run": run_dd, "prompt": prompt, "ask": ask_btn, "answer_a": answer_a, "answer_b": answer_b,
            "votes": vote_btns, "reveal": reveal_md, "tally": tally_md, "voter": voter, "voter_token": voter_token,
            "round": round_state}
