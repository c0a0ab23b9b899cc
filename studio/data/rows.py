"""Canonical rows: the one shape every reader's output is turned into and every step works on.

A row's `data` is exactly what goes into the cleaned JSONL, in TRL's standard formats:
`{"messages": [...]}` (sft), `{"prompt", "chosen", "rejected"}` (preference) or `{"text"}` (text).
`number` says where the row came from in the input (a line, a spreadsheet row or an item), so every
report entry can point the user back at their own file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from studio.messages import Msg

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# Report keys that are always present, zero included (the `studio clean` contract).
REQUIRED_REASONS = ("empty", "duplicate", "near_duplicate", "garbled", "too_long")


@dataclass(slots=True)
class Row:
    data: dict
    number: int  # 1-based line / row / item number in the input file
    kind: str = "dialog"  # dialog | reasoning | preference | text: what rebalancing counts
    tokens: int | None = None  # length in tokens of the rendered row, once measured


@dataclass(slots=True)
class Removed:
    row: Row | None  # None for input that never became a row (a JSONL line that does not parse)
    reason: str
    detail: Msg | str = ""  # a catalog message (a Chinese page shows it in Chinese); the report keeps both
    number: int = 0
    raw: str = ""  # the input as read, when there is no row to show

    def __post_init__(self):
        if self.row is not None:
            self.number = self.row.number

    def to_dict(self) -> dict:
        return {"number": self.number, "reason": self.reason, **detail_fields(self.detail),
                "row": self.row.data if self.row else self.raw}


def detail_fields(detail: Msg | str) -> dict:
    """{"detail": English text} plus {"message": {"id", "params"}} for a catalog message."""
    if isinstance(detail, Msg):
        return {"detail": str(detail), "message": detail.to_dict()}
    return {"detail": str(detail or "")}


@dataclass(slots=True)
class Changed:
    number: int
    reason: str
    before: str = ""  # only for changes worth showing (mojibake, masked personal data)
    after: str = ""

    def to_dict(self) -> dict:
        d = {"number": self.number, "reason": self.reason}
        if self.before or self.after:
            d.update(before=self.before, after=self.after)
        return d


@dataclass
class StepResult:
    """What every cleaning step returns: rows kept (possibly changed), rows removed, rows changed."""
    kept: list[Row]
    removed: list[Removed] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)
    flagged: list[dict] = field(default_factory=list)  # kept as is but worth a look (personal data)
    note: Msg | None = None  # when the step could not run as asked (no tokenizer, ...)


def data_format(data: dict) -> str:
    if "messages" in data:
        return "sft"
    if "chosen" in data:
        return "preference"
    return "text"


def kind_of(data: dict) -> str:
    """dialog / reasoning / preference / text. Reasoning = an assistant answer that shows its thinking."""
    if "messages" in data:
        for m in data["messages"]:
            if m["role"] == "assistant" and m["content"].lstrip().startswith(THINK_OPEN):
                return "reasoning"
        return "dialog"
    return "preference" if "chosen" in data else "text"


def make_row(data: dict, number: int) -> Row:
    return Row(data, number, kind_of(data))


def think_answer(thinking: str, answer: str) -> str:
    """The assistant content of a reasoning row (the format DeepSeek-R1 and Qwen3 train on)."""
    return f"{THINK_OPEN}\n{thinking.strip()}\n{THINK_CLOSE}\n\n{answer.strip()}"


def texts(data: dict) -> list[str]:
    """Every string of a row, in a stable order (the same order `map_texts` visits them)."""
    if "messages" in data:
        return [m["content"] for m in data["messages"]]
    if "chosen" in data:
        p = data["prompt"]
        out = [m["content"] for m in p] if isinstance(p, list) else [p]
        return out + [data["chosen"], data["rejected"]]
    return [data["text"]]


def map_texts(data: dict, fn: Callable[[str], str]) -> dict:
    """A copy of the row with `fn` applied to every string; the same dict when nothing changed,
    so steps can tell cheaply whether a row changed (`result is data`)."""
    if "messages" in data:
        msgs = data["messages"]
        new = [fn(m["content"]) for m in msgs]
        if all(a is m["content"] or a == m["content"] for a, m in zip(new, msgs)):
            return data
        return {**data, "messages": [{**m, "content": c} for m, c in zip(msgs, new)]}
    if "chosen" in data:
        p = data["prompt"]
        np_ = [{**m, "content": fn(m["content"])} for m in p] if isinstance(p, list) else fn(p)
        out = {**data, "prompt": np_, "chosen": fn(data["chosen"]), "rejected": fn(data["rejected"])}
        return data if texts(out) == texts(data) else out
    t = fn(data["text"])
    return data if t == data["text"] else {**data, "text": t}


def answer_text(data: dict) -> str:
    """The part the model learns to write: the last assistant turn, the chosen answer, or the text."""
    if "messages" in data:
        for m in reversed(data["messages"]):
            if m["role"] == "assistant":
                return m["content"]
        return ""
    return data["chosen"] if "chosen" in data else data["text"]


def prompt_messages(data: dict) -> list[dict]:
    """The conversation up to the last answer (what the model is given), as messages."""
    if "messages" in data:
        msgs = data["messages"]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs))
        return msgs[:last]
    p = data.get("prompt", "")
    return p if isinstance(p, list) else [{"role": "user", "content": p}]


def dedup_text(data: dict) -> str:
    """The text near-duplicate detection compares: everything but the system prompt, which is often
    the same long paragraph on every row and would make unrelated rows look alike."""
    if "messages" in data:
        parts = [m["content"] for m in data["messages"] if m["role"] != "system"]
    elif "chosen" in data:
        parts = [m["content"] for m in prompt_messages(data) if m["role"] != "system"]
        parts += [data["chosen"], data["rejected"]]
    else:
        parts = [data["text"]]
    return "\n".join(parts)
