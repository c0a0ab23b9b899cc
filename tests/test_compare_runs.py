"""Compare runs: two or more run folders side by side (studio.evaluate.compare_runs), on folders written
by hand: their curves overlaid, one table of settings and figures, the best marked."""

import json

from studio import run_files
from studio.config import RunConfig
from studio.evaluate import compare_runs
from studio.files import write_jsonl
from studio.messages import say


def make_run(parent, name, model, lr, evals, checks=None, duration=120.0, summary_best=True):
    rd = parent / name
    rd.mkdir(parents=True)
    cfg = RunConfig()
    cfg.model.name, cfg.training.learning_rate, cfg.training.early_stopping_patience = model, lr, 2
    cfg.save(run_files.config(rd))
    metrics = [{"step": s, "loss": 3.0 - 0.1 * s} for s in range(1, 11)]
    metrics += [{"step": s, "eval_loss": v} for s, v in evals]
    write_jsonl(run_files.metrics(rd), metrics)
    best = min(evals, key=lambda x: x[1])
    summary = {"status": "completed", "steps": 10, "total_steps": 10, "duration_s": duration, "model": model,
               "eval_loss": evals[-1][1], "train_loss": 2.0, "tokens_per_second": 100.0}
    if summary_best:
        summary.update(best_step=best[0], best_eval_loss=best[1])
    run_files.summary(rd).write_text(json.dumps(summary))
    if checks:
        run_files.eval_results(rd).write_text(json.dumps({"base": {"exact_match": 0.1}, "finetuned": checks,
                                                          "consistency": {"finetuned": {"mean_rouge_l": 0.5}}}))
    return rd


def test_two_runs_side_by_side_with_the_best_marked(tmp_path):
    a = make_run(tmp_path, "20260101-000000-a", "qwen2.5-0.5b-instruct", 2e-4, [(5, 1.4), (10, 1.6)],
                 checks={"exact_match": 0.4, "rouge_l": 0.5, "perplexity": 4.0})
    b = make_run(tmp_path, "20260101-000001-b", "smollm2-360m-instruct", 1e-4, [(5, 1.2), (10, 1.1)],
                 checks={"exact_match": 0.6, "rouge_l": 0.45, "perplexity": 5.0}, duration=300.0,
                 summary_best=False)  # an older run: the best is read from metrics.jsonl
    facts = compare_runs.gather([a, b])
    assert compare_runs.best_run(facts) == 1 and facts[1].best == (10, 1.1)
    headers, rows = compare_runs.table(facts)
    assert headers[1] == "1. qwen2.5-0.5b-instruct" and headers[2].startswith("★ 2. smollm2-360m-instruct")
    by = {r[0]: r[1:] for r in rows}
    assert by[say("runs.compare.row.run")] == [a.name, b.name]
    assert by[say("runs.compare.row.best_eval_loss")] == ["1.4000", "★ 1.1000"]
    assert by[say("runs.compare.row.best_step")] == ["5", "10"]
    assert by[say("runs.compare.row.learning_rate")] == ["0.0002", "0.0001"]
    assert by[say("runs.compare.row.exact_match")] == ["40.0%", "★ 60.0%"]  # higher is better
    assert by[say("runs.compare.row.rouge_l")] == ["★ 50.0%", "45.0%"]
    assert by[say("runs.compare.row.perplexity")] == ["★ 4.0000", "5.0000"]  # lower is better
    assert by[say("runs.compare.row.duration")][0].startswith("★")
    assert by[say("runs.compare.row.consistency")] == ["50.0%", "50.0%"], "a tie marks nobody"
    # the same table in Chinese
    zh_headers, zh_rows = compare_runs.table(facts, "zh")
    assert zh_headers[0] == say("runs.compare.what", "zh") and zh_rows[0][0] == say("runs.compare.row.run", "zh")
    assert "★" in compare_runs.summary_line(facts) and "1.1000" in compare_runs.summary_line(facts)


def test_the_curves_are_overlaid_one_series_per_run_and_kind(tmp_path):
    a = make_run(tmp_path, "r1", "embedded", 2e-4, [(5, 1.4), (10, 1.6)])
    b = make_run(tmp_path, "r2", "embedded", 1e-4, [(5, 1.2), (10, 1.1)])
    pay = compare_runs.curves(compare_runs.gather([a, b]))
    assert pay["columns"] == ["step", "loss", "series"] and pay["mark"] == "line"
    series = {r[2] for r in pay["data"]}
    v, t = say("train.series.validation"), say("train.series.training")
    assert series == {f"1. embedded · {t}", f"1. embedded · {v}", f"2. embedded · {t}", f"2. embedded · {v}"}
    assert [r[:2] for r in pay["data"] if r[2] == f"2. embedded · {v}"] == [[5, 1.2], [10, 1.1]]


def test_runs_without_validation_mark_no_best(tmp_path):
    rd = tmp_path / "r"
    rd.mkdir()
    RunConfig().save(run_files.config(rd))
    write_jsonl(run_files.metrics(rd), [{"step": 1, "loss": 2.0}])
    facts = compare_runs.gather([rd, rd])
    assert compare_runs.best_run(facts) is None
    headers, _ = compare_runs.table(facts)
    assert not any("★" in h for h in headers)
    assert compare_runs.summary_line(facts) == say("runs.compare.no_validation")
