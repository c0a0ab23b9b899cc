"""Evaluation rows: a prompt (the messages before the last answer) and a reference (the last answer).

Users pass canonical JSONL (`{"messages": [...]}`) but also the raw files they trained from (Alpaca
`instruction`/`input`/`output`, `prompt`/`response`, `question`/`answer`, ShareGPT `conversations`).
Files are read with `studio.data.read` (any encoding and file type the Data tab takes).
TODO: once `studio.data` exposes format detection (records -> canonical rows), map records through it
instead of `_to_messages` below, so eval accepts every format the Data tab does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from studio import run_files
from studio.errors import StudioError
from studio.models.chat import prompt_and_reference

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "model": "assistant", "bot": "assistant"}
_PAIRS = (("prompt", "response"), ("prompt", "completion"), ("question", "answer"), ("query", "response"),
          ("input", "output"))


@dataclass
class EvalRow:
    messages: list[dict]  # the conversation up to (not including) the answer
    reference: str  # the answer we hope for

    @property
    def prompt_text(self) -> str:
        """The last user turn: what a person reads as "the question"."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


def alpaca_user_text(instruction: str, input_text: str = "") -> str:
    """The same user message training builds: instruction, a blank line, then input (if any)."""
    instruction, input_text = (instruction or "").strip(), (input_text or "").strip()
    return f"{instruction}\n\n{input_text}" if input_text else instruction


def _to_messages(row: dict) -> list[dict] | None:
    if isinstance(row.get("messages"), list):
        return [{"role": m["role"], "content": m.get("content") or ""} for m in row["messages"]]
    if isinstance(row.get("conversations"), list):
        out = []
        for m in row["conversations"]:
            role = _SHAREGPT_ROLES.get(str(m.get("from", m.get("role", ""))).lower())
            if role:
                out.append({"role": role, "content": m.get("value", m.get("content")) or ""})
        if row.get("system"):
            out.insert(0, {"role": "system", "content": row["system"]})
        return out
    if "prompt" in row and "chosen" in row:  # a preference row: the chosen answer is the one we hope for
        prompt, chosen = row["prompt"], row["chosen"]
        msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt or [])
        if isinstance(chosen, list):
            return msgs + [m for m in chosen if m.get("role") == "assistant"][-1:]
        return msgs + [{"role": "assistant", "content": str(chosen or "")}]
    if "instruction" in row and "output" in row:
        msgs = [{"role": "user", "content": alpaca_user_text(row["instruction"], row.get("input") or "")},
                {"role": "assistant", "content": str(row["output"] or "")}]
        if row.get("system"):
            msgs.insert(0, {"role": "system", "content": row["system"]})
        return msgs
    for q, a in _PAIRS:
        if isinstance(row.get(q), str) and isinstance(row.get(a), str):
            return [{"role": "user", "content": row[q]}, {"role": "assistant", "content": row[a]}]
    return None


def _read_records(path: Path) -> list[dict]:
    # studio.data's reader sniffs the encoding (UTF-8 with or without BOM, UTF-16, GBK) and the file type.
    from studio.data.read import read_file

    return read_file(path).rows


def rows_from_records(records: list[dict]) -> list[EvalRow]:
    rows = []
    for rec in records:
        messages = _to_messages(rec)
        if not messages:
            continue
        prompt, reference = prompt_and_reference(messages)
        if prompt and reference.strip() and any(m["role"] == "user" for m in prompt):
            rows.append(EvalRow(prompt, reference))
    return rows


def load_rows(path: str | Path, max_rows: int = 0) -> list[EvalRow]:
    """Rows with a prompt and a reference answer from a data file; the first `max_rows` (0 = all)."""
    path = Path(path)
    if not path.is_file():
        raise StudioError("eval.error.no_file", path=str(path))
    records = _read_records(path)
    rows = rows_from_records(records)
    if not rows:
        raise StudioError("eval.error.no_rows", name=path.name)
    return rows[:max_rows] if max_rows and max_rows > 0 else rows


def validation_rows(run_dir: str | Path) -> list[EvalRow]:
    """The run's validation rows (data/eval.jsonl), or its training rows when it had no validation split."""
    for path in (run_files.eval_data(run_dir), run_files.train_data(run_dir)):
        if path.is_file():
            try:
                return load_rows(path)
            except StudioError:
                continue
    return []


def sample_row(rows: list[EvalRow], rng: random.Random | None = None) -> EvalRow | None:
    return (rng or random).choice(rows) if rows else None
