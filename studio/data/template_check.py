"""Render the rows with the chosen model's chat template before training starts.

Two things go wrong silently in training otherwise: a template that refuses a row (roles that do not
alternate, a system message it does not support) and an answer that the cutoff length cuts off,
so the model learns from a prompt with no answer, or half of one (the trainer drops the first and
truncates the second). Rows are rendered exactly as the trainer will
(`apply_chat_template(..., tokenize=False)`), the prompt once more with the generation prompt, and
both are tokenized to see where the answer starts and where the cutoff falls.

Check the rows as they will be trained: after cleaning (and mixing), so rows that `too_long`
removed are not reported twice. A cutoff of 0 ("keep every row") still meets the trainer's
sequence length, 2048 tokens unless set, so that is what it is checked against.

Rendering 100,000 rows through Jinja takes longer than cleaning them, so, as in tokens.py: a
template's errors depend on the order of roles, not on the words, so one row per role sequence is
rendered to find them (every row with a refused sequence is reported); lengths are estimated only
for rows whose byte bound could cross the cutoff, from the template's skeleton plus the contents'
tokens; and only rows whose estimate is within a few tokens of the cutoff are rendered for real.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.data.rows import Row, prompt_messages
from studio.data.tokens import TokenCounter, encode_lengths
from studio.messages import Msg

DEFAULT_CUTOFF = 2048  # the trainer's sequence length unless one is set (TrainingConfig.max_length)


@dataclass
class TemplateReport:
    cutoff: int = DEFAULT_CUTOFF
    checked: int = 0
    failed: list[dict] = field(default_factory=list)  # {"number", "error"}: the template refused the row
    # {"number", "prompt_tokens", "total_tokens" (to the end of the answer), "cut": "entirely" | "partly", "detail"}
    cut: list[dict] = field(default_factory=list)
    problem: Msg | None = None  # when no row could be checked at all

    @property
    def ok(self) -> bool:
        return not (self.failed or self.cut or self.problem)

    def counts(self) -> dict[str, int]:
        entirely = sum(1 for c in self.cut if c["cut"] == "entirely")
        return {"failed": len(self.failed), "cut": len(self.cut), "cut_entirely": entirely,
                "cut_partly": len(self.cut) - entirely}

    def to_dict(self) -> dict:
        return {"cutoff": self.cutoff, "checked": self.checked, **self.counts(), "ok": self.ok,
                "problem": str(self.problem or ""), "problem_message": self.problem.to_dict() if self.problem else None,
                "failed_rows": self.failed, "cut_rows": self.cut}


def check_template(rows: list[Row], tokenizer, cutoff_len: int = DEFAULT_CUTOFF, batch: int = 4096) -> TemplateReport:
    """Rows the template refuses and answers that `cutoff_len` tokens (0: the default 2048) would cut,
    entirely or partly, as the trainer will see them (studio.engine.datasets.sft_encode counts the same).
    A row's `tokens`, when set, is taken as this tokenizer's count (clean() measures with the same one)."""
    cutoff_len = cutoff_len or DEFAULT_CUTOFF
    report = TemplateReport(cutoff=cutoff_len)
    if not rows:
        return report
    if tokenizer is None:
        report.problem = Msg("data.template.no_tokenizer")
        return report
    if "text" in rows[0].data:
        report.problem = Msg("data.template.plain_text")
        return report
    if not getattr(tokenizer, "chat_template", None):
        report.problem = Msg("data.template.no_template")
        return report
    errors: dict[tuple, str] = {}  # role sequence -> the template's error ("" when it renders)
    fine = []
    for row in rows:
        key = _roles(row.data)
        if key not in errors:
            errors[key] = _render_error(tokenizer, row.data)
        if errors[key]:
            report.failed.append({"number": row.number, "error": errors[key]})
        else:
            fine.append(row)
    report.checked = len(fine)
    # Lengths estimated from a skeleton and the contents (tokens.py: exact for ChatML templates,
    # within a token or two per message for others); rows near the cutoff are rendered for real.
    counter, skeletons = TokenCounter(tokenizer), {}
    tail = _tail(tokenizer)
    # The first rows are estimated whatever their bound, to see that the bound holds for this tokenizer.
    # A row cleaning already measured (row.tokens: this tokenizer's count of its longest conversation,
    # the estimate below) is estimated again only when it comes near the cutoff: tokenizing every row
    # a second time was half the time of cleaning 100,000 rows.
    todo = [r for i, r in enumerate(fine) if i < 64 or (r.tokens is None or r.tokens > cutoff_len - _margin(r.data))
            and counter.upper_bound(r.data) > cutoff_len]
    estimates = _estimate(todo, tokenizer, skeletons, batch)
    if any(total > counter.upper_bound(r.data) for r, (_, total) in zip(todo, estimates)):
        todo = fine  # this tokenizer can beat the bound: estimate every row
        estimates = _estimate(todo, tokenizer, skeletons, batch)
    near = []
    for row, (p_len, total) in zip(todo, estimates):
        margin = _margin(row.data)
        if total <= cutoff_len - margin:
            continue
        if total > cutoff_len + margin and abs(p_len - cutoff_len) > margin:
            _add_cut(report, row, p_len, total - tail, cutoff_len)
        else:
            near.append(row)
    _measure(near, tokenizer, cutoff_len, batch, report, tail)
    report.cut.sort(key=lambda c: c["number"])
    return report


def _margin(data: dict) -> int:
    """How far an estimate may be from the rendered length: a token or two per message."""
    return 2 * max(len(c) for c in _conversations(data)) + 4


def _estimate(rows: list[Row], tokenizer, skeletons: dict, batch: int) -> list[tuple[int, int]]:
    """(prompt tokens with the generation prompt, total tokens of the longest conversation) per row."""
    out = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        convs = [_conversations(r.data) for r in chunk]
        lengths = iter(encode_lengths(tokenizer, [m["content"] for cs in convs for c in cs for m in c]))
        for row, cs in zip(chunk, convs):
            per_conv = [[next(lengths) for _ in c] for c in cs]
            prompt = prompt_messages(row.data)  # the start of every conversation of the row
            p_len = _skeleton(tokenizer, prompt, True, skeletons) + sum(per_conv[0][:len(prompt)])
            total = max(_skeleton(tokenizer, c, False, skeletons) + sum(n) for c, n in zip(cs, per_conv))
            out.append((p_len, total))
    return out


def _skeleton(tokenizer, msgs: list[dict], generation_prompt: bool, cache: dict) -> int:
    """Tokens the template adds around the contents of these roles."""
    key = (tuple(m["role"] for m in msgs), generation_prompt)
    if key not in cache:
        empty = [{"role": m["role"], "content": ""} for m in msgs]
        try:
            text = tokenizer.apply_chat_template(empty, tokenize=False, add_generation_prompt=generation_prompt)
            cache[key] = encode_lengths(tokenizer, [text])[0]
        except Exception:  # noqa: BLE001 - a template that wants contents: count it generously
            cache[key] = 4 * len(msgs)
    return cache[key]


def _add_cut(report: TemplateReport, row: Row, p_len: int, total: int, cutoff_len: int) -> None:
    if p_len >= cutoff_len:
        how, detail = "entirely", Msg("data.template.cut_entirely", tokens=p_len, cutoff=cutoff_len)
    elif total > cutoff_len:
        how, detail = "partly", Msg("data.template.cut_partly", total=total, n=total - cutoff_len)
    else:
        return
    report.cut.append({"number": row.number, "prompt_tokens": p_len, "total_tokens": total, "cut": how,
                       "detail": str(detail), "message": detail.to_dict()})


def _measure(rows: list[Row], tokenizer, cutoff_len: int, batch: int, report: TemplateReport, tail: int = 0) -> None:
    """Render and tokenize `rows` for real, adding those whose answer crosses the cutoff to report.cut.
    `tail`: whitespace tokens after the last answer, which the trainer does not count as answer."""
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        rendered = []
        for row in chunk:
            p_text = tokenizer.apply_chat_template(prompt_messages(row.data), tokenize=False, add_generation_prompt=True)
            fulls = [tokenizer.apply_chat_template(conv, tokenize=False) for conv in _conversations(row.data)]
            rendered.append((p_text, fulls))
        lengths = iter(encode_lengths(tokenizer, [t for p, fs in rendered for t in [p, *fs]]))
        for row, (_, fulls) in zip(chunk, rendered):
            p_len = next(lengths)
            _add_cut(report, row, p_len, max(next(lengths) for _ in fulls) - tail, cutoff_len)


def _tail(tokenizer) -> int:
    """Tokens of whitespace the template puts after an answer's end-of-turn token (a newline, in ChatML).
    Training leaves them out of the answer (studio.models.chat), so cutting them cuts no answer."""
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                                             tokenize=False)
    except Exception:  # noqa: BLE001 - a template that refuses this pair: count no tail
        return 0
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = 0
    while n < len(ids) and tokenizer.decode(ids[len(ids) - 1 - n:len(ids) - n]).strip() == "":
        n += 1
    return n


def _roles(data: dict) -> tuple:
    if "messages" in data:
        return tuple(m["role"] for m in data["messages"])
    return ("preference", *(m["role"] for m in prompt_messages(data)))


def _render_error(tokenizer, data: dict) -> str:
    """The template's error for this row's sequence of roles, or ''."""
    try:
        tokenizer.apply_chat_template(prompt_messages(data), tokenize=False, add_generation_prompt=True)
        for conv in _conversations(data):
            tokenizer.apply_chat_template(conv, tokenize=False)
    except Exception as e:  # jinja raises TemplateError (or anything a template's raise_exception gives)
        return str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    return ""


def _conversations(data: dict) -> list[list[dict]]:
    if "messages" in data:
        return [data["messages"]]
    prompt = prompt_messages(data)
    return [prompt + [{"role": "assistant", "content": data[k]}] for k in ("chosen", "rejected")]
