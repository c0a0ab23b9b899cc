"""Guess which column is what, and turn records into canonical rows.

`detect(table)` returns a `Mapping`: a plain dataclass the Data tab shows as dropdowns and the user
may change; `to_rows(table, mapping)` applies it. Column names are matched case-insensitively
against English and Chinese synonyms (columns.yaml: instruction / input / output, question / answer, ...).

Unpaired preference labels (KTO-style `label: true/false`) never train the model on an answer
labelled bad: by default the good answers become SFT rows and the bad ones are removed and
reported (`labelled_bad`); with `label_mode="pairs"` a prompt that has both a good and a bad answer
becomes a DPO triple, and answers without a partner are removed (`unpaired`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from studio.data.read import Table
from studio.data.rows import Removed, Row, make_row, think_answer
from studio.errors import StudioError
from studio.messages import Msg

KINDS = ("instruction", "reasoning", "conversation", "preference", "unpaired", "text")
FORMAT_OF_KIND = {"instruction": "sft", "reasoning": "sft", "conversation": "sft", "preference": "preference",
                  "unpaired": "sft", "text": "text"}

# Header synonyms per part (English and Chinese), message roles and the label values meaning "good".
with open(Path(__file__).with_name("columns.yaml"), encoding="utf-8") as _f:
    _COLUMNS = yaml.load(_f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
SYNONYMS: dict[str, list[str]] = _COLUMNS["synonyms"]
ROLE_ALIASES: dict[str, str] = _COLUMNS["roles"]
_TRUE = {str(x) for x in _COLUMNS["true"]}
_FALSE = {str(x) for x in _COLUMNS["false"]}


@dataclass
class Mapping:
    """Which input column plays which part. Empty string = not used."""
    kind: str = ""  # one of KINDS; "" when nothing could be recognised
    prompt: str = ""  # the question / instruction (instruction, unpaired, preference)
    input: str = ""  # Alpaca's input, joined to the prompt after a blank line
    response: str = ""  # the answer (instruction, reasoning, unpaired)
    thinking: str = ""  # the reasoning before the answer (reasoning)
    system: str = ""  # an optional system prompt per row
    history: str = ""  # Alpaca's earlier turns [[question, answer], ...]
    messages: str = ""  # a list of messages (conversation; the prompt of ShareGPT preference data)
    chosen: str = ""
    rejected: str = ""
    label: str = ""  # true/false per row (unpaired)
    text: str = ""  # plain text for continued pre-training
    label_mode: str = "sft"  # unpaired labels: "sft" keeps good answers, "pairs" makes DPO triples
    columns: list[str] = field(default_factory=list)  # the columns the file has (for the tab's dropdowns)

    @property
    def format(self) -> str:
        if self.kind == "unpaired" and self.label_mode == "pairs":
            return "preference"
        return FORMAT_OF_KIND.get(self.kind, "")

    def used(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("kind", "label_mode", "columns") and getattr(self, f.name)}

    def describe(self) -> str:
        parts = ", ".join(f"{k} ← {v}" for k, v in self.used().items())
        return f"{self.kind}: {parts}" if self.kind else "-"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Mapping":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def needs(self) -> list[str]:
        """The parts this kind cannot do without. Unpaired labels sit beside a conversation (LLaMA-Factory's
        KTO shape) or beside a prompt and an answer (TRL's unpaired shape, or instruction/output)."""
        if self.kind == "unpaired":
            return ["messages", "label"] if self.messages else ["prompt", "response", "label"]
        return {"instruction": ["prompt", "response"], "reasoning": ["prompt", "thinking", "response"],
                "conversation": ["messages"], "preference": ["chosen", "rejected"], "text": ["text"]}[self.kind]

    def check(self) -> None:
        """Raise a StudioError naming the columns found and what was expected, when unusable."""
        found = self.columns[:20] or ["-"]
        if self.kind not in KINDS:
            raise StudioError("data.error.kind_unknown", found=found, expected=Msg("data.expected"))
        missing = [n for n in self.needs() if not getattr(self, n)]
        if missing:
            raise StudioError("data.error.missing_parts", kind=Msg(f"data.kind.{self.kind}"),
                              missing=[Msg(f"data.part.{n}") for n in missing], found=found,
                              expected=Msg(f"data.expected.{self.kind}"))
        unknown = [c for c in self.used().values() if self.columns and c not in self.columns]
        if unknown:
            raise StudioError("data.error.no_such_column", names=unknown, found=found)
        if self.label_mode not in ("sft", "pairs"):
            raise StudioError("data.error.label_mode")


def _norm(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def detect(table: Table) -> Mapping:
    """Guess the mapping from column names (and, for message columns, the values). Never raises:
    an unrecognised file gives `kind == ""`, and `Mapping.check()` says what is missing."""
    cols = table.columns
    by_norm = {}
    for c in cols:
        by_norm.setdefault(_norm(c), c)

    taken: set[str] = set()

    def pick(role: str, synonyms=None) -> str:
        for s in synonyms or SYNONYMS[role]:
            c = by_norm.get(s)
            if c is not None and c not in taken:
                taken.add(c)
                return c
        return ""

    m = Mapping(columns=list(cols))
    m.chosen, m.rejected = pick("chosen"), pick("rejected")
    m.messages = pick("messages")
    if m.messages and not _looks_like_messages(table, m.messages):
        taken.discard(m.messages)
        m.messages = ""
    m.system, m.history = pick("system"), pick("history")
    m.prompt = pick("prompt")
    m.input = pick("input")
    if not m.prompt and m.input:  # input/output without an instruction: the input is the question
        m.prompt, m.input = m.input, ""
    m.thinking = pick("thinking")
    m.response = pick("response")
    m.label = pick("label")
    if m.label and not _looks_like_labels(table, m.label):  # a class or a category, not a verdict on the answer
        taken.discard(m.label)
        m.label = ""
    if m.messages and m.label:  # the answer is the conversation's last turn, not a column
        for name in ("prompt", "input", "response", "thinking", "history"):
            taken.discard(getattr(m, name))
            setattr(m, name, "")

    if m.chosen and m.rejected:
        m.kind = "preference"
    elif m.messages and m.label:  # LLaMA-Factory's KTO shape: a conversation and a good/bad label
        m.kind = "unpaired"
    elif m.messages:
        m.kind = "conversation"
    elif m.prompt and m.response and m.label:
        m.kind = "unpaired"
    elif m.prompt and m.response:
        m.kind = "reasoning" if m.thinking else "instruction"
    else:
        m.text = pick("text")
        if not m.text and len(cols) == 1 and table.file_type == "txt":
            m.text = cols[0]
        m.kind = "text" if m.text else ""
    if not m.kind:  # keep the partial guesses: the user completes the mapping from there
        return m
    # Keep only the fields that the kind uses, so the tab shows exactly what will be read.
    uses = {"instruction": {"prompt", "input", "response", "system", "history"},
            "reasoning": {"prompt", "input", "response", "thinking", "system", "history"},
            "conversation": {"messages", "system"},
            "preference": {"prompt", "input", "messages", "chosen", "rejected", "system", "history"},
            "unpaired": {"prompt", "input", "response", "label", "system"} | ({"messages"} if m.messages else set()),
            "text": {"text"}}[m.kind]
    for name in m.used():
        if name not in uses:
            setattr(m, name, "")
    return m


def _looks_like_labels(table: Table, col: str, sample: int = 500) -> bool:
    """Every value (of the first rows) says good or bad: true/false, 1/0, yes/no, good/bad, ... A column
    named "label" that holds categories ("billing", 3) is not a verdict: reading it as one would set
    aside every row whose category is not in the "good" list."""
    for r in table.rows[:sample]:
        v = r.get(col)
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)) and v in (0, 1, -1):
            continue
        if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE | {""}:
            continue
        return False
    return True


def _looks_like_messages(table: Table, col: str) -> bool:
    for r in table.rows[:50]:
        v = _maybe_json(r.get(col))
        if isinstance(v, list) and v:
            return isinstance(v[0], dict)
    return False


# ---- conversion ---------------------------------------------------------------------------------

@dataclass
class Converted:
    rows: list[Row]
    removed: list[Removed]  # records that could not become a row, with the reason
    format: str  # sft | preference | text


class _Bad(Exception):
    """A record that cannot be converted; its Msg becomes the report's detail."""


def to_rows(table: Table, mapping: Mapping) -> Converted:
    """Apply a mapping to every record. Raises StudioError if the mapping itself is unusable."""
    mapping.check()
    convert = _CONVERTERS[mapping.kind]
    rows, removed = [], [Removed(None, s["reason"], s.get("detail", ""), s["number"], s.get("raw", ""))
                         for s in table.skipped]
    for record, number in zip(table.rows, table.numbers):
        try:
            data = convert(record, mapping)
        except _Bad as e:
            removed.append(Removed(None, "malformed", e.args[0], number, _short(record)))
            continue
        rows.append(make_row(data, number))
    if mapping.kind == "unpaired":
        rows, dropped = _resolve_labels(rows, mapping)
        removed += dropped
    if mapping.format == "preference":
        _same_prompt_type(rows)
    return Converted(rows, removed, mapping.format)


def as_text(v) -> str:
    """Numbers and other scalars in text fields become text; a missing value becomes ''."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else str(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _maybe_json(v):
    """CSV and Excel cells can hold a JSON list of messages as text."""
    if isinstance(v, str) and v.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(v, strict=False)
        except json.JSONDecodeError:
            return v
    return v


def parse_messages(value, default_role: str = "user") -> list[dict]:
    """Messages from role/content (OpenAI, TRL) or from/value (ShareGPT) dicts, a single dict, or a
    plain string (one message of `default_role`)."""
    value = _maybe_json(value)
    if value is None or isinstance(value, str) or not isinstance(value, (list, dict)):
        return [{"role": default_role, "content": as_text(value)}]
    items = [value] if isinstance(value, dict) else value
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise _Bad(Msg("data.detail.malformed.message_type", type=type(item).__name__))
        role = item.get("role", item.get("from", default_role))
        role_norm = ROLE_ALIASES.get(str(role).strip().lower())
        if role_norm is None:
            raise _Bad(Msg("data.detail.malformed.role", role=str(role)))
        content = item.get("content", item.get("value", item.get("text")))
        if isinstance(content, list):  # OpenAI content parts: [{"type": "text", "text": ...}]
            content = "\n".join(as_text(p.get("text")) if isinstance(p, dict) else as_text(p) for p in content)
        content = as_text(content)
        thinking = as_text(item.get("reasoning_content") or item.get("thinking") or item.get("reasoning"))
        if role_norm == "assistant" and thinking.strip():
            content = think_answer(thinking, content)
        out.append({"role": role_norm, "content": content})
    return out


def _prompt_messages(record: dict, m: Mapping) -> list[dict]:
    """System, earlier turns and the question of an instruction-like record, as messages."""
    msgs = []
    if m.system and as_text(record.get(m.system)).strip():
        msgs.append({"role": "system", "content": as_text(record.get(m.system))})
    if m.history:
        hist = _maybe_json(record.get(m.history)) or []
        if not isinstance(hist, list):
            raise _Bad(Msg("data.detail.malformed.history"))
        for pair in hist:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise _Bad(Msg("data.detail.malformed.history"))
            msgs += [{"role": "user", "content": as_text(pair[0])}, {"role": "assistant", "content": as_text(pair[1])}]
    if m.messages:
        msgs += [x for x in parse_messages(record.get(m.messages)) if not (x["role"] == "system" and msgs)]
        return msgs
    prompt = _maybe_json(record.get(m.prompt)) if m.prompt else ""
    if isinstance(prompt, (list, dict)):  # TRL conversational prompt
        msgs += parse_messages(prompt)
        return msgs
    question = as_text(prompt)
    extra = as_text(record.get(m.input)) if m.input else ""
    if extra.strip():
        question = f"{question}\n\n{extra}" if question.strip() else extra
    msgs.append({"role": "user", "content": question})
    return msgs


def _answer(value) -> str:
    """One answer string from a string, a message, or a list of messages (its last assistant turn)."""
    value = _maybe_json(value)
    if isinstance(value, (list, dict)):
        msgs = [x for x in parse_messages(value, "assistant") if x["role"] == "assistant"]
        return msgs[-1]["content"] if msgs else ""
    return as_text(value)


def _instruction(record: dict, m: Mapping) -> dict:
    msgs = _prompt_messages(record, m)
    response = _maybe_json(record.get(m.response))
    if isinstance(response, (list, dict)):  # TRL conversational completion
        msgs += parse_messages(response, "assistant")
        return {"messages": msgs}
    answer = as_text(response)
    if m.thinking:
        thinking = as_text(record.get(m.thinking))
        if thinking.strip():
            answer = think_answer(thinking, answer)
    msgs.append({"role": "assistant", "content": answer})
    return {"messages": msgs}


def _conversation(record: dict, m: Mapping) -> dict:
    msgs = parse_messages(record.get(m.messages))
    sys_text = as_text(record.get(m.system)) if m.system else ""
    if sys_text.strip() and not (msgs and msgs[0]["role"] == "system"):
        msgs.insert(0, {"role": "system", "content": sys_text})
    return {"messages": msgs}


def _preference(record: dict, m: Mapping) -> dict:
    if m.prompt or m.messages:
        prompt = _prompt_messages(record, m)
    else:  # TRL implicit prompt: chosen and rejected are whole conversations sharing a prefix
        c, r = parse_messages(record.get(m.chosen), "assistant"), parse_messages(record.get(m.rejected), "assistant")
        n = 0
        while n < min(len(c), len(r)) - 1 and c[n] == r[n]:
            n += 1
        prompt = c[:n]
    return {"prompt": _prompt_value(prompt), "chosen": _answer(record.get(m.chosen)),
            "rejected": _answer(record.get(m.rejected))}


def _prompt_value(msgs: list[dict]):
    """A plain string for one user turn; a list of messages when there is a system prompt or history."""
    if len(msgs) == 1 and msgs[0]["role"] == "user":
        return msgs[0]["content"]
    return msgs


def _text(record: dict, m: Mapping) -> dict:
    return {"text": as_text(record.get(m.text))}


def _unpaired(record: dict, m: Mapping) -> dict:
    row = _conversation(record, m) if m.messages and not m.response else _instruction(record, m)
    if not row["messages"] or row["messages"][-1]["role"] != "assistant":
        raise _Bad(Msg("data.detail.malformed.no_last_answer"))
    row["_label"] = _is_true(record.get(m.label))  # resolved (and removed) by _resolve_labels
    return row


def _is_true(v) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v > 0
    return as_text(v).strip().lower() in _TRUE


def _resolve_labels(rows: list[Row], m: Mapping) -> tuple[list[Row], list[Removed]]:
    labels = [r.data.pop("_label") for r in rows]
    if m.label_mode == "sft":
        kept = [r for r, good in zip(rows, labels) if good]
        removed = [Removed(r, "labelled_bad", Msg("data.detail.labelled_bad"))
                   for r, good in zip(rows, labels) if not good]
        return kept, removed
    # pairs: the n-th good and the n-th bad answer to the same prompt make one DPO triple.
    groups: dict[str, dict[bool, list[Row]]] = {}
    for r, good in zip(rows, labels):
        key = json.dumps(r.data["messages"][:-1], ensure_ascii=False)
        groups.setdefault(key, {True: [], False: []})[good].append(r)
    out, removed = [], []
    for g in groups.values():
        for good, bad in zip(g[True], g[False]):
            msgs = good.data["messages"]
            data = {"prompt": _prompt_value(msgs[:-1]), "chosen": msgs[-1]["content"],
                    "rejected": bad.data["messages"][-1]["content"]}
            out.append(make_row(data, good.number))
        n = min(len(g[True]), len(g[False]))
        for r in g[True][n:] + g[False][n:]:
            removed.append(Removed(r, "unpaired", Msg("data.detail.unpaired")))
    out.sort(key=lambda r: r.number)
    return out, removed


def _same_prompt_type(rows: list[Row]) -> None:
    """One file, one prompt type: Arrow (and so `datasets`) cannot hold strings and lists in one column."""
    if any(isinstance(r.data["prompt"], list) for r in rows):
        for r in rows:
            if isinstance(r.data["prompt"], str):
                r.data["prompt"] = [{"role": "user", "content": r.data["prompt"]}]


def _short(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)[:500]


_CONVERTERS = {"instruction": _instruction, "reasoning": _instruction, "conversation": _conversation,
               "preference": _preference, "unpaired": _unpaired, "text": _text}
