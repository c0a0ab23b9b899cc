"""Guess which column is what, and turn records into canonical rows.

`detect(table)` returns a `Mapping`: a plain dataclass the Data tab shows as dropdowns and the user
may change; `to_rows(table, mapping)` applies it. Column names are matched case-insensitively
against English and Chinese synonyms (问题 / 答案, 指令 / 输入 / 输出, ...).

Unpaired preference labels (KTO-style `label: true/false`) never train the model on an answer
labelled bad: by default the good answers become SFT rows and the bad ones are removed and
reported (`labelled_bad`); with `label_mode="pairs"` a prompt that has both a good and a bad answer
becomes a DPO triple, and answers without a partner are removed (`unpaired`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

from studio.data.read import Table
from studio.data.rows import Removed, Row, make_row, think_answer
from studio.errors import StudioError

KINDS = ("instruction", "reasoning", "conversation", "preference", "unpaired", "text")
FORMAT_OF_KIND = {"instruction": "sft", "reasoning": "sft", "conversation": "sft", "preference": "preference",
                  "unpaired": "sft", "text": "text"}

# Synonyms per role, best first. Header names are compared lower-cased with spaces and dashes as "_".
SYNONYMS = {
    "messages": ["messages", "conversations", "conversation", "dialog", "dialogue", "chat", "turns", "对话", "多轮对话", "会话"],
    "prompt": ["instruction", "prompt", "question", "query", "problem", "user", "human", "instruction_text",
               "指令", "问题", "提问", "问", "题目", "用户", "用户输入", "问句", "查询", "指示"],
    "input": ["input", "context", "输入", "上下文", "补充输入", "背景"],
    "response": ["output", "response", "completion", "answer", "reply", "target", "assistant", "bot", "solution",
                 "输出", "答案", "回答", "回复", "答", "应答", "解答", "助手"],
    "thinking": ["thinking", "think", "thought", "thoughts", "cot", "reasoning", "reasoning_content", "rationale",
                 "chain_of_thought", "思考", "思考过程", "思维链", "推理", "推理过程", "解题思路"],
    "system": ["system", "system_prompt", "系统", "系统提示", "系统提示词", "系统消息"],
    "history": ["history", "历史", "对话历史"],
    "chosen": ["chosen", "preferred", "accepted", "good", "好回答", "优选回答", "选中"],
    "rejected": ["rejected", "dispreferred", "bad", "差回答", "劣选回答"],
    "label": ["label", "labels", "is_good", "标签", "好坏"],
    "text": ["text", "content", "document", "passage", "body", "文本", "内容", "正文", "段落", "文档"],
}
_HELP = {
    "instruction": "a question column and an answer column (instruction/input/output, prompt/response, question/answer, 问题/答案)",
    "conversation": "a messages or conversations column (role/content or from/value)",
    "reasoning": "question, thinking and answer columns",
    "preference": "prompt, chosen and rejected columns",
    "unpaired": "prompt, completion and label columns",
    "text": "a text or content column",
}
EXPECTED = ("instruction/input/output, prompt/response, question/answer (问题/答案), messages or conversations, "
            "prompt/chosen/rejected, or a text column")
_HELP_ZH = {
    "instruction": "一列问题和一列答案（instruction/input/output、prompt/response、question/answer、问题/答案）",
    "conversation": "一列 messages 或 conversations（role/content 或 from/value）",
    "reasoning": "问题、思考过程和答案三列",
    "preference": "prompt、chosen 和 rejected 三列",
    "unpaired": "prompt、completion 和 label 三列",
    "text": "一列 text 或 content",
}
EXPECTED_ZH = ("instruction/input/output、prompt/response、question/answer（问题/答案）、messages 或 conversations、"
               "prompt/chosen/rejected，或一列 text")
_KIND_ZH = {"instruction": "指令", "conversation": "对话", "reasoning": "推理", "preference": "偏好",
            "unpaired": "带好坏标签", "text": "纯文本"}

ROLE_ALIASES = {"user": "user", "human": "user", "question": "user", "用户": "user",
                "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant",
                "chatgpt": "assistant", "function_call": "assistant", "答": "assistant", "助手": "assistant",
                "system": "system", "系统": "system",
                "function": "tool", "observation": "tool", "tool": "tool", "ipython": "tool"}
_TRUE = {"true", "1", "yes", "y", "good", "positive", "chosen", "accept", "accepted", "好", "是", "对", "👍"}


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
        return f"{self.kind}: {parts}" if self.kind else "not recognised"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Mapping":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def check(self) -> None:
        """Raise a StudioError naming the columns found and what was expected, when unusable."""
        found = ", ".join(self.columns[:20]) or "none"
        found_zh = "、".join(self.columns[:20]) or "无"
        if self.kind not in KINDS:
            raise StudioError(f"Could not tell what the columns mean (found: {found}); expected {EXPECTED}.",
                              f"看不出这些列的含义（找到的列：{found_zh}）；应为 {EXPECTED_ZH}。")
        need = {"instruction": ["prompt", "response"], "reasoning": ["prompt", "thinking", "response"],
                "conversation": ["messages"], "preference": ["chosen", "rejected"],
                "unpaired": ["prompt", "response", "label"], "text": ["text"]}[self.kind]
        missing = [n for n in need if not getattr(self, n)]
        if missing:
            raise StudioError(f"For {self.kind} data, choose a column for {' and '.join(missing)} "
                              f"(found: {found}; expected {_HELP[self.kind]}).",
                              f"{_KIND_ZH.get(self.kind, self.kind)}数据需要为 {'和'.join(missing)} 选择一列。"
                              f"找到的列：{found_zh}；应为{_HELP_ZH[self.kind]}。")
        unknown = [c for c in self.used().values() if self.columns and c not in self.columns]
        if unknown:
            raise StudioError(f"No column named {', '.join(unknown)} (found: {found}).",
                              f"没有名为 {'、'.join(unknown)} 的列（找到的列：{found_zh}）。")
        if self.label_mode not in ("sft", "pairs"):
            raise StudioError("label_mode must be sft (keep the good answers) or pairs (make chosen/rejected pairs).",
                              "label_mode 必须是 sft（保留好的回答）或 pairs（组成 chosen/rejected 偏好对）。")


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

    if m.chosen and m.rejected:
        m.kind = "preference"
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
            "unpaired": {"prompt", "input", "response", "label", "system"},
            "text": {"text"}}[m.kind]
    for name in m.used():
        if name not in uses:
            setattr(m, name, "")
    return m


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
    """A record that cannot be converted; its message becomes the report's detail."""


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
            removed.append(Removed(None, "malformed", str(e), number, _short(record)))
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
            return json.loads(v)
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
            raise _Bad(f"a message is a {type(item).__name__}, not an object with role and content")
        role = item.get("role", item.get("from", default_role))
        role_norm = ROLE_ALIASES.get(str(role).strip().lower())
        if role_norm is None:
            raise _Bad(f"unknown role '{role}'")
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
            raise _Bad("history is not a list of [question, answer] pairs")
        for pair in hist:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise _Bad("history is not a list of [question, answer] pairs")
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
    row = _instruction(record, m)
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
        removed = [Removed(r, "labelled_bad", "labelled as a bad answer: never trained on")
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
            removed.append(Removed(r, "unpaired", "no answer with the opposite label to pair it with"))
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
