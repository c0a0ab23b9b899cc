"""The run's `votes.jsonl`: blind votes and 1-5 ratings, one JSON object a line, and the preference
pairs they yield for the next round of training (the seeds' data flywheel).

Records (both kinds share the round fields):
    {"kind": "vote", "round_id", "time", "voter", "prompt", "messages", "answer_a", "answer_b",
     "sides": {"A": "base"|"finetuned", "B": ...}, "answers": {"base", "finetuned"}, "settings",
     "vote": "A"|"B"|"tie"|"both_bad", "winner": "finetuned"|"base"|"tie"|"both_bad"}
    {"kind": "rating", ...the same round fields..., "ratings": {"A": 1-5, "B": 1-5},
     "scores": {"base": 1-5, "finetuned": 1-5}}
Several browsers vote on the same run at once: appends are serialised by a lock per file in this
process and an advisory file lock across processes, and each record is flushed to disk before the
caller moves on (the reveal comes only after the vote is safely written).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from studio import run_files
from studio.files import write_jsonl

VOTES_FILE = run_files.VOTES
CHOICES = ("A", "B", "tie", "both_bad")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

try:  # POSIX only; on Windows the in-process lock is what we have
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def _lock_for(path: Path) -> threading.Lock:
    key = str(path.resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def append_record(path: str | Path, record: dict) -> None:
    """Append one record as a line, durably: it is on disk when this returns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _lock_for(path):
        with open(path, "a", encoding="utf-8") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def read_records(path: str | Path, kind: str | None = None) -> list[dict]:
    """Records of a votes file (of one kind when given); a line cut by a crash is skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / VOTES_FILE
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and (kind is None or rec.get("kind", "vote") == kind):
                out.append(rec)
    return out


def winner_of(vote: str, sides: dict) -> str:
    """"A"/"B" -> the model on that side; "tie" and "both_bad" stay as they are."""
    if vote in ("A", "B"):
        return sides[vote]
    if vote in ("tie", "both_bad"):
        return vote
    raise ValueError(f"A vote is one of {', '.join(CHOICES)}.")


def _prompt_field(rec: dict):
    """A single user turn stays a plain string; a longer conversation stays in TRL's conversational form."""
    messages = rec.get("messages") or []
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0]["content"]
    return messages or rec.get("prompt", "")


def preference_pairs(records: list[dict]) -> list[dict]:
    """DPO rows from votes where one side won: the winner's answer is chosen, the loser's rejected.
    Ties and both-bad say nothing about which is better; identical answers teach nothing."""
    pairs, seen = [], set()
    for rec in records:
        if rec.get("kind", "vote") != "vote" or rec.get("winner") not in ("base", "finetuned"):
            continue
        answers = rec.get("answers") or {}
        winner = rec["winner"]
        loser = "base" if winner == "finetuned" else "finetuned"
        chosen, rejected = answers.get(winner, ""), answers.get(loser, "")
        if not chosen.strip() or chosen.strip() == rejected.strip():
            continue
        prompt = _prompt_field(rec)
        key = json.dumps([prompt, chosen, rejected], ensure_ascii=False)
        if key in seen:  # the same round voted by several people: one training row
            continue
        seen.add(key)
        if isinstance(prompt, list):
            pairs.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                          "rejected": [{"role": "assistant", "content": rejected}]})
        else:
            pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pairs


def save_preference_pairs(run_dir: str | Path, out_path: str | Path | None = None) -> tuple[Path, int]:
    """Write the run's preference pairs as a DPO JSONL (default: RUN/data/preferences.jsonl), usable as
    the training file of a DPO run. Returns (path, number of rows)."""
    run_dir = Path(run_dir)
    out = Path(out_path) if out_path else run_dir / "data" / "preferences.jsonl"
    n = write_jsonl(out, preference_pairs(read_records(run_dir / VOTES_FILE)))
    return out, n
