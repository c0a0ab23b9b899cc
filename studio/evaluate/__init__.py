"""Base vs fine-tuned: blind A/B rounds, tallies, ratings, automatic metrics. No gradio here.

    rows.py      data file -> EvalRow(messages before the answer, reference answer)
    metrics.py   exact match, ROUGE-L, BLEU (CJK-aware), agreement between answers: pure functions
    generate.py  ModelPair (one model; base = adapter disabled), the device queue, batched and streamed
                 generation, perplexity of reference answers
    arena.py     blind rounds: Arena.ask / stream / vote / rate, get_arena(run_dir) shared by all sessions
    votes.py     votes.jsonl (durable appends) and the preference pairs it yields (DPO JSONL)
    tally.py     win rate with a Wilson interval, per voter, ratings with t intervals, plain sentences
    checks.py    metrics on a labelled set, consistency test, edge cases; progress generators; eval.json
    report.py    pandas tables, plotly figures (axes and legends from the catalog), CSV export
    runs.py      runs with a trained model: the choices the Compare and Export tabs offer, the one gate
                 for a run folder a browser names
    blind.py     the Compare tab's blind round as plain functions: sample, ask, vote, rate, reveal, DPO data
    views.py     what the Compare tab shows: tally, ratings and check results as tables and sentences
    runner.py    the Compare tab's checks as generators of page updates (progress bar), CSV download
    cli.py       `studio eval RUN_DIR --data FILE [--json]`

Every sentence comes from the message catalog (studio/locales/<lang>.yaml): errors are StudioError(id, ...),
tallies and ratings say what they mean with `.message()` (a Msg) or `.sentence(lang)`.

The Compare tab's flow: `arena = get_arena(run_dir)`; a "Send" handler iterates `arena.ask(prompt)`
(public views only: round_id, prompt, answer_a, answer_b); a vote handler calls
`arena.vote(round_id, choice, voter_id)` and shows the reveal and `report.tally_figure(arena.records())`.
"""
