"""Checks on the bundled sample datasets (assets/samples) and, when present, the held-out set."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
REVIEWS = SAMPLES / "reviews_sentiment.jsonl"
DPO = SAMPLES / "dpo_preferences.jsonl"
HELDOUT = Path("/work/heldout/reviews_heldout.jsonl")

INSTRUCTION = "Classify the sentiment of this product review as positive or negative."
LABELS = {"positive", "negative"}


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            assert line.strip(), f"{path.name}: blank line {n}"
            rows.append(json.loads(line))
    return rows


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _check_reviews(rows: list[dict], name: str) -> None:
    for i, r in enumerate(rows):
        assert set(r) == {"instruction", "input", "output"}, f"{name} row {i}: keys {sorted(r)}"
        assert r["instruction"] == INSTRUCTION, f"{name} row {i}: instruction differs"
        assert r["output"] in LABELS, f"{name} row {i}: label {r['output']!r}"
        assert r["input"].startswith("Review: "), f"{name} row {i}: input prefix"
        words = len(r["input"][len("Review: "):].split())
        assert 3 <= words <= 100, f"{name} row {i}: {words} words"
    pos = sum(r["output"] == "positive" for r in rows)
    assert pos == len(rows) - pos, f"{name}: {pos} positive vs {len(rows) - pos} negative"
    normed = [_norm(r["input"]) for r in rows]
    assert len(set(normed)) == len(normed), f"{name}: duplicate review inputs"


def test_reviews_train_format_and_balance():
    rows = _read_jsonl(REVIEWS)
    assert len(rows) >= 320
    _check_reviews(rows, REVIEWS.name)


@pytest.mark.skipif(not HELDOUT.exists(), reason="held-out set lives outside the repo")
def test_reviews_heldout_format_and_no_overlap():
    held = _read_jsonl(HELDOUT)
    assert len(held) >= 20
    _check_reviews(held, HELDOUT.name)
    train = {_norm(r["input"]) for r in _read_jsonl(REVIEWS)}
    overlap = [r["input"] for r in held if _norm(r["input"]) in train]
    assert not overlap, f"held-out reviews also in training: {overlap[:3]}"


def test_dpo_preferences_shape():
    rows = _read_jsonl(DPO)
    assert len(rows) >= 110
    for i, r in enumerate(rows):
        assert set(r) == {"prompt", "chosen", "rejected"}, f"row {i}: keys {sorted(r)}"
        for k in ("prompt", "chosen", "rejected"):
            assert isinstance(r[k], str) and r[k].strip(), f"row {i}: empty {k}"
        assert r["chosen"] != r["rejected"], f"row {i}: chosen == rejected"
    prompts = [r["prompt"] for r in rows]
    assert len(set(prompts)) == len(prompts), "duplicate DPO prompts"
    chinese = sum(bool(re.search(r"[\u4e00-\u9fff]", p)) for p in prompts)
    assert 0.15 <= chinese / len(rows) <= 0.4, f"{chinese} Chinese prompts of {len(rows)}"
