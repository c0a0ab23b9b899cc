"""Cleaning steps. Each takes rows and returns a StepResult: the rows it keeps (changed ones are new
Row objects, so the caller's rows keep their data: the tab can clean the same rows again with other
options), the rows it removes with a reason, and the rows it changed with a reason. `clean()` runs
them in order.

The order matters: garbled text is judged before control characters are stripped (or a row of
control characters would pass as merely short), personal data is masked before deduplication
(two rows that differ only by a phone number are duplicates once masked), and token lengths are
measured last, on the fewest rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable

from studio.data import neardup, pii
from studio.data.rows import (REQUIRED_REASONS, THINK_CLOSE, Changed, Removed, Row, StepResult, answer_text,
                              dedup_text, map_texts, texts)
from studio.errors import Sentence, StudioError

PII_MODES = ("flag", "mask", "drop", "off")


@dataclass
class CleanOptions:
    fix_mojibake: bool = True
    drop_garbled: bool = True
    garbled_share: float = 0.3
    dedup: bool = True
    near_dup: bool = True
    near_dup_threshold: float = 0.85
    cutoff_len: int = 2048
    min_chars: int = 0
    token_sample: int = 10_000
    pii: str = "flag"

    def check(self) -> None:
        if self.pii not in PII_MODES:
            raise StudioError(f"Personal data handling must be one of {', '.join(PII_MODES)}, not '{self.pii}'.",
                              f"个人信息的处理方式必须是 {', '.join(PII_MODES)} 之一，而不是“{self.pii}”。")
        if not 0 < self.near_dup_threshold <= 1:
            raise StudioError("The near-duplicate threshold must be between 0 and 1 (0.85 is usual).",
                              "近似重复的阈值必须在 0 到 1 之间（通常取 0.85）。")
        if not 0 < self.garbled_share <= 1:
            raise StudioError("The garbled share must be between 0 and 1 (0.3 is usual).",
                              "乱码比例必须在 0 到 1 之间（通常取 0.3）。")
        if self.cutoff_len < 0 or self.min_chars < 0 or self.token_sample < 1:
            raise StudioError("The cutoff length and minimum answer length cannot be negative.",
                              "截断长度和最短回答长度不能是负数。")


@dataclass
class CleanResult:
    rows: list[Row]
    removed: list[Removed]
    changed: list[Changed]
    flagged: list[dict]
    notes: list[str]
    tokens_before: list[int] | None  # lengths of the input rows (a sample of them in big files), with a tokenizer
    tokens_after: list[int] | None  # lengths of the kept rows (likewise)
    timings: dict[str, float]

    def removed_counts(self) -> dict[str, int]:
        counts = {r: 0 for r in REQUIRED_REASONS} | {"too_short": 0}
        for r in self.removed:
            counts[r.reason] = counts.get(r.reason, 0) + 1
        return counts

    def changed_counts(self) -> dict[str, int]:
        counts = {"fixed_mojibake": 0, "stripped_control": 0, "normalized": 0, "masked_personal_data": 0}
        for c in self.changed:
            counts[c.reason] = counts.get(c.reason, 0) + 1
        return counts


# What `progress` is told while a step runs: a Sentence, so a Chinese page shows Chinese (str() is English).
STEP_NAMES = {
    "fix_mojibake": Sentence("fixing mojibake", "修复乱码"),
    "drop_garbled": Sentence("removing garbled rows", "删除乱码行"),
    "strip_control": Sentence("stripping control characters", "去除控制字符"),
    "normalize": Sentence("normalising Unicode and whitespace", "规范化 Unicode 和空白"),
    "drop_empty": Sentence("removing empty rows", "删除空行"),
    "drop_too_short": Sentence("removing too short answers", "删除过短的回答"),
    "personal_data": Sentence("looking for personal data", "查找个人信息"),
    "drop_duplicates": Sentence("removing duplicates", "删除完全重复"),
    "drop_near_duplicates": Sentence("removing near duplicates", "删除近似重复"),
    "drop_too_long": Sentence("measuring lengths in tokens", "按 token 计算长度"),
    "done": Sentence("done", "完成"),
}


def clean(rows: list[Row], options: CleanOptions | None = None, tokenizer=None,
          progress: Callable[[float, Sentence], None] | None = None) -> CleanResult:
    """Run every step in order. `tokenizer` (any Hugging Face tokenizer) enables `too_long` and the
    token statistics; without one, lengths are not measured and a note says so. `progress(fraction,
    step)` hears each step's name as a Sentence (English and Chinese)."""
    from studio.data.tokens import TokenCounter

    o = options or CleanOptions()
    o.check()
    timings, notes = {}, []
    counter = TokenCounter(tokenizer) if tokenizer is not None else None
    tokens_before = tokens_after = None
    for r in rows:  # lengths cached by an earlier run may be another tokenizer's
        r.tokens = None
    if counter:
        t = time.perf_counter()
        tokens_before = counter.count(_sample(rows, o.token_sample, seed=0))
        timings["count_tokens"] = time.perf_counter() - t
    steps = [
        ("fix_mojibake", o.fix_mojibake, fix_mojibake),
        ("drop_garbled", o.drop_garbled, lambda rs: drop_garbled(rs, o.garbled_share)),
        ("strip_control", True, strip_control),
        ("normalize", True, normalize),
        ("drop_empty", True, drop_empty),
        ("drop_too_short", o.min_chars > 0, lambda rs: drop_too_short(rs, o.min_chars)),
        ("personal_data", o.pii != "off", lambda rs: personal_data(rs, o.pii)),
        ("drop_duplicates", o.dedup, drop_duplicates),
        ("drop_near_duplicates", o.near_dup, lambda rs: drop_near_duplicates(rs, o.near_dup_threshold)),
        ("drop_too_long", o.cutoff_len > 0, lambda rs: drop_too_long(rs, tokenizer, o.cutoff_len, counter)),
    ]
    removed, changed, flagged = [], [], []
    for i, (name, enabled, step) in enumerate(steps):
        if not enabled:
            continue
        if progress:
            progress(i / len(steps), STEP_NAMES[name])
        t = time.perf_counter()
        result = step(rows)
        timings[name] = time.perf_counter() - t
        rows = result.kept
        removed += result.removed
        changed += result.changed
        flagged += result.flagged
        if result.note:
            notes.append(result.note)
    if counter:
        t = time.perf_counter()
        after = _sample(rows, o.token_sample, seed=1)
        counter.count([r for r in after if r.tokens is None])  # rows changed by a step, or not sampled before
        tokens_after = [r.tokens for r in after]
        timings["count_tokens"] += time.perf_counter() - t
    if progress:
        progress(1.0, STEP_NAMES["done"])
    return CleanResult(rows, removed, changed, flagged, notes, tokens_before, tokens_after, timings)


def _sample(rows: list[Row], k: int, seed: int) -> list[Row]:
    """All rows, or k of them at random (in input order) when there are more."""
    if len(rows) <= k:
        return rows
    import random

    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), k))]


# ---- text fixes ---------------------------------------------------------------------------------

def _map_rows(rows: list[Row], fn: Callable[[str], str], reason: str, show: bool = False) -> StepResult:
    kept, changed = [], []
    for r in rows:
        new = map_texts(r.data, fn)
        if new is r.data:
            kept.append(r)
            continue
        kept.append(dataclasses.replace(r, data=new, tokens=None))
        if show:
            before, after = next(((a, b) for a, b in zip(texts(r.data), texts(new)) if a != b), ("", ""))
            changed.append(Changed(r.number, reason, before[:300], after[:300]))
        else:
            changed.append(Changed(r.number, reason))
    return StepResult(kept, changed=changed)


def fix_mojibake(rows: list[Row]) -> StepResult:
    """UTF-8 text that was once decoded as Latin-1 / Windows-1252 ('æˆ‘ä»¬' for '我们'), repaired with
    ftfy. Only `fix_encoding`: ftfy's full `fix_text` would also turn full-width punctuation into ASCII."""
    import ftfy
    from ftfy.badness import is_bad

    def fix(s: str) -> str:
        return s if s.isascii() else ftfy.fix_encoding(s)

    suspects = [r for r in rows if not all(t.isascii() for t in texts(r.data)) and is_bad("\n".join(texts(r.data)))]
    if not suspects:
        return StepResult(rows)
    result = _map_rows(suspects, fix, "fixed_mojibake", show=True)
    by_id = {id(old): new for old, new in zip(suspects, result.kept)}
    return StepResult([by_id.get(id(r), r) for r in rows], changed=result.changed)


_UNREADABLE_CHAR = "[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\U000f0000-\U0010ffff]"
_UNREADABLE = re.compile(_UNREADABLE_CHAR + r"|锟斤拷|\?{3,}")  # 锟斤拷: U+FFFD pairs re-read as GBK; ???: text
_SUSPECT = re.compile(_UNREADABLE_CHAR + r"|锟|\?\?\?").search  # saved in a code page that lacks its characters


def garbled_share(s: str) -> float:
    """Share of the visible characters that are unreadable."""
    if not _SUSPECT(s):  # the usual case, decided by one scan in C
        return 0.0
    visible = len(s) - sum(map(s.count, " \n\t\r"))
    return sum(map(len, _UNREADABLE.findall(s))) / visible if visible else 0.0


def drop_garbled(rows: list[Row], share: float = 0.3) -> StepResult:
    kept, removed = [], []
    for r in rows:
        worst = max(map(garbled_share, texts(r.data)))
        if worst >= share:
            removed.append(Removed(r, "garbled", f"{worst:.0%} of a field is unreadable characters"))
        else:
            kept.append(r)
    return StepResult(kept, removed)


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _strip_control(s: str) -> str:
    return _CONTROL.sub("", s) if _CONTROL.search(s) else s


def strip_control(rows: list[Row]) -> StepResult:
    return _map_rows(rows, _strip_control, "stripped_control")


# Exotic spaces become a plain space; zero-width characters go. U+3000 (the full-width space of
# Chinese typesetting) stays, like all full-width punctuation: NFC only, never NFKC.
_SPACES = {c: " " for c in (0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F)} | \
          {c: None for c in (0x200B, 0x2060, 0xFEFF)}
_TRAILING = re.compile(r"[ \t]+\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalize_text(s: str) -> str:
    if not s.isascii():
        s = unicodedata.normalize("NFC", s).translate(_SPACES)
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in s:
        s = _MANY_NEWLINES.sub("\n\n", _TRAILING.sub("\n", s))
    return s.strip()


def normalize(rows: list[Row]) -> StepResult:
    """Unicode NFC, Windows line endings, trailing spaces, runs of blank lines, surrounding
    whitespace. Leading indentation inside a field stays: it is meaningful in code answers."""
    return _map_rows(rows, normalize_text, "normalized")


# ---- removals -----------------------------------------------------------------------------------

def _visible_answer(content: str) -> str:
    return content.split(THINK_CLOSE, 1)[1] if content.lstrip().startswith("<think>") and THINK_CLOSE in content else content


def empty_reason(data: dict) -> str:
    """Why a row has nothing to learn from, or '' when it is fine."""
    if "messages" in data:
        msgs = data["messages"]
        if not any(m["role"] == "user" and m["content"].strip() for m in msgs):
            return "no question"
        if not any(m["role"] == "assistant" for m in msgs):
            return "no answer"
        for m in msgs:
            if m["role"] == "assistant" and not _visible_answer(m["content"]).strip():
                return "blank answer"
            if m["role"] == "user" and not m["content"].strip():
                return "blank question"
        return ""
    if "chosen" in data:
        p = data["prompt"]
        if not (any(m["content"].strip() for m in p if m["role"] == "user") if isinstance(p, list) else p.strip()):
            return "blank prompt"
        if not data["chosen"].strip() or not data["rejected"].strip():
            return "blank chosen or rejected answer"
        return ""
    return "" if data["text"].strip() else "blank text"


def drop_empty(rows: list[Row]) -> StepResult:
    kept, removed = [], []
    for r in rows:
        why = empty_reason(r.data)
        if why:
            removed.append(Removed(r, "empty", why))
        elif "chosen" in r.data and r.data["chosen"] == r.data["rejected"]:
            removed.append(Removed(r, "identical_pair", "chosen and rejected are the same answer: nothing to prefer"))
        else:
            kept.append(r)
    return StepResult(kept, removed)


def drop_too_short(rows: list[Row], min_chars: int) -> StepResult:
    kept, removed = [], []
    for r in rows:
        n = len(_visible_answer(answer_text(r.data)).strip())
        if n < min_chars:
            removed.append(Removed(r, "too_short", f"answer has {n} characters, fewer than {min_chars}"))
        else:
            kept.append(r)
    return StepResult(kept, removed)


def personal_data(rows: list[Row], mode: str = "flag") -> StepResult:
    """flag: keep the row and list it; mask: replace with [EMAIL], [PHONE], ...; drop: remove the row."""
    kept, removed, changed, flagged = [], [], [], []
    for r in rows:
        kinds: list[str] = []

        def scan(s: str) -> str:
            masked, found = pii.scan(s)
            kinds.extend(found)
            return masked

        new = map_texts(r.data, scan)
        if not kinds:
            kept.append(r)
            continue
        label = ", ".join(sorted(set(kinds)))
        if mode == "drop":
            removed.append(Removed(r, "personal_data", label))
        elif mode == "mask":
            kept.append(dataclasses.replace(r, data=new, tokens=None))
            before, after = next((a, b) for a, b in zip(texts(r.data), texts(new)) if a != b)
            changed.append(Changed(r.number, "masked_personal_data", before[:300], after[:300]))
        else:
            kept.append(r)
            flagged.append({"number": r.number, "reason": "personal_data", "detail": label})
    return StepResult(kept, removed, changed, flagged)


def _digest(data: dict) -> bytes:
    """128 bits of the row's roles and texts: a million keys in a few dozen MB, not the texts again."""
    if "messages" in data:
        key = "\x1e".join(m["role"] + "\x1f" + m["content"] for m in data["messages"])
    elif "chosen" in data:
        p = data["prompt"]
        p = "\x1e".join(m["role"] + "\x1f" + m["content"] for m in p) if isinstance(p, list) else p
        key = "\x1d".join((p, data["chosen"], data["rejected"]))
    else:
        key = data["text"]
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def drop_duplicates(rows: list[Row]) -> StepResult:
    """The first of identical rows stays; identical means equal after the text steps above."""
    first: dict[bytes, int] = {}
    kept, removed = [], []
    for r in rows:
        key = _digest(r.data)
        if key in first:
            removed.append(Removed(r, "duplicate", f"same as #{first[key]}"))
        else:
            first[key] = r.number
            kept.append(r)
    return StepResult(kept, removed)


def drop_near_duplicates(rows: list[Row], threshold: float = 0.85) -> StepResult:
    found = neardup.find_near_duplicates([dedup_text(r.data) for r in rows], threshold)
    if not found:
        return StepResult(rows)
    gone = {i: (j, sim) for i, j, sim in found}
    kept, removed = [], []
    for i, r in enumerate(rows):
        if i in gone:
            j, sim = gone[i]
            removed.append(Removed(r, "near_duplicate", f"{sim:.0%} alike to #{rows[j].number}"))
        else:
            kept.append(r)
    return StepResult(kept, removed)


def drop_too_long(rows: list[Row], tokenizer, cutoff_len: int = 2048, counter=None) -> StepResult:
    """Rows over the cutoff in tokens. Only rows whose upper bound reaches the cutoff are tokenized
    (see tokens.py); `counter` carries the template skeletons and counts from earlier calls."""
    if tokenizer is None:
        return StepResult(rows, note="No tokenizer was given, so lengths were not measured in tokens and "
                                     "too_long was not checked.")
    from studio.data.tokens import TokenCounter

    counter = counter or TokenCounter(tokenizer)
    todo = [r for r in rows if r.tokens is None and (not counter.bound_holds or counter.upper_bound(r.data) > cutoff_len)]
    counter.count(todo)
    if not counter.bound_holds:  # this tokenizer can beat its bound: measure every row
        counter.count([r for r in rows if r.tokens is None])
    kept, removed = [], []
    for r in rows:
        if r.tokens is not None and r.tokens > cutoff_len:
            removed.append(Removed(r, "too_long", f"{r.tokens} tokens, over the cutoff of {cutoff_len}"))
        else:
            kept.append(r)
    return StepResult(kept, removed)
