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

from studio.data import neardup, pii, placeholders
from studio.data.cutoff import CutoffChoice, choose_cutoff
from studio.data.rows import (REQUIRED_REASONS, THINK_CLOSE, Changed, Removed, Row, StepResult, answer_text,
                              dedup_text, make_row, map_texts, texts)
from studio.errors import StudioError
from studio.messages import Msg

PII_MODES = ("flag", "mask", "drop", "off")
TOO_LONG_MODES = ("drop", "truncate")
DEFAULT_BLOCK = 2048  # the block length of plain text when nothing else says (the trainer's default)


@dataclass
class CleanOptions:
    fix_mojibake: bool = True
    drop_garbled: bool = True
    garbled_share: float = 0.3
    dedup: bool = True
    near_dup: bool = True
    near_dup_threshold: float = 0.85
    cutoff_len: int | None = None  # None: chosen from the data and the model (cutoff.choose_cutoff); 0: none
    too_long: str = "drop"  # rows over the cutoff: drop them, or keep them for training to truncate
    context_len: int | None = None  # the model's context length, when known (the cutoff stays within it)
    memory_len: int | None = None  # tokens per row that fit in memory per the run plan, when known
    min_chars: int = 0
    token_sample: int = 10_000
    pii: str = "flag"
    fill_name: str = ""  # fills {{name}}-like placeholders (identity sets); "" leaves them flagged
    fill_author: str = ""  # fills {{author}}-like placeholders

    def check(self) -> None:
        if self.pii not in PII_MODES:
            raise StudioError("data.error.pii_mode", modes=list(PII_MODES), value=self.pii)
        if self.too_long not in TOO_LONG_MODES:
            raise StudioError("data.error.too_long_mode", modes=list(TOO_LONG_MODES), value=self.too_long)
        if not 0 < self.near_dup_threshold <= 1:
            raise StudioError("data.error.threshold")
        if not 0 < self.garbled_share <= 1:
            raise StudioError("data.error.garbled_share")
        if (self.cutoff_len or 0) < 0 or self.min_chars < 0 or self.token_sample < 1:
            raise StudioError("data.error.negative")


@dataclass
class CleanResult:
    rows: list[Row]
    removed: list[Removed]
    changed: list[Changed]
    flagged: list[dict]
    notes: list[Msg]
    tokens_before: list[int] | None  # lengths of the input rows (a sample of them in big files), with a tokenizer
    tokens_after: list[int] | None  # lengths of the kept rows (likewise)
    timings: dict[str, float]
    cutoff_len: int = 0  # the cutoff applied (chosen from the data when the options left it open); 0: none
    cutoff: CutoffChoice | None = None  # how it was chosen, when it was
    text_counts: dict | None = None  # plain text: {"documents", "blocks"}

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

    def flagged_counts(self) -> dict[str, int]:
        counts = {"personal_data": 0, "placeholder": 0}
        for f in self.flagged:
            counts[f["reason"]] = counts.get(f["reason"], 0) + 1
        return counts


STEPS = ("fix_mojibake", "drop_garbled", "strip_control", "normalize", "drop_empty", "drop_too_short", "placeholders",
         "personal_data", "drop_duplicates", "drop_near_duplicates", "split_blocks", "drop_too_long")


def step_name(name: str) -> Msg:
    """What `progress` is told while a step runs (data.step.<name>)."""
    return Msg(f"data.step.{name}")


def clean(rows: list[Row], options: CleanOptions | None = None, tokenizer=None,
          progress: Callable[[float, Msg], None] | None = None) -> CleanResult:
    """Run every step in order. `tokenizer` (any Hugging Face tokenizer) enables `too_long`, the cutoff
    chosen from the data, text blocks and the token statistics; without one, lengths are not measured and
    a note says so. `progress(fraction, step)` hears each step's name as a Msg."""
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
    is_text = bool(rows) and "text" in rows[0].data
    cutoff_len, choice = _resolve_cutoff(o, tokens_before, is_text)
    steps = [
        ("fix_mojibake", o.fix_mojibake, fix_mojibake),
        ("drop_garbled", o.drop_garbled, lambda rs: drop_garbled(rs, o.garbled_share)),
        ("strip_control", True, strip_control),
        ("normalize", True, normalize),
        ("drop_empty", True, drop_empty),
        ("drop_too_short", o.min_chars > 0, lambda rs: drop_too_short(rs, o.min_chars)),
        ("placeholders", True, lambda rs: find_placeholders(rs, o.fill_name, o.fill_author)),
        ("personal_data", o.pii != "off", lambda rs: personal_data(rs, o.pii)),
        ("drop_duplicates", o.dedup, drop_duplicates),
        ("drop_near_duplicates", o.near_dup, lambda rs: drop_near_duplicates(rs, o.near_dup_threshold)),
        ("split_blocks", is_text and cutoff_len > 0, lambda rs: split_blocks(rs, tokenizer, cutoff_len)),
        ("drop_too_long", not is_text and (cutoff_len > 0 or tokenizer is None and o.cutoff_len != 0),
         lambda rs: drop_too_long(rs, tokenizer, cutoff_len, counter, o.too_long, _limit(o))),
    ]
    removed, changed, flagged = [], [], []
    documents = len(rows)
    for i, (name, enabled, step) in enumerate(steps):
        if not enabled:
            continue
        if progress:
            progress(i / len(steps), step_name(name))
        t = time.perf_counter()
        if name == "split_blocks":
            documents = len(rows)
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
        progress(1.0, step_name("done"))
    text_counts = {"documents": documents, "blocks": len(rows)} if is_text else None
    return CleanResult(rows, removed, changed, flagged, notes, tokens_before, tokens_after, timings, cutoff_len,
                       choice, text_counts)


def _limit(o: CleanOptions) -> int | None:
    """The longest row the model reads and memory holds, when known: no cutoff can keep a longer one whole."""
    return min([x for x in (o.context_len, o.memory_len) if x and x > 0], default=None)


def _resolve_cutoff(o: CleanOptions, lengths: list[int] | None, is_text: bool) -> tuple[int, CutoffChoice | None]:
    """The cutoff to apply. Set in the options: that one. Open (None): for SFT and DPO rows, the one that
    keeps 99% of them whole within the model and memory limits; for plain text, the block length
    (the trainer's default, within the same limits). Without lengths in tokens it cannot be chosen: 0."""
    if o.cutoff_len is not None:
        return o.cutoff_len, None
    if is_text:
        return min(DEFAULT_BLOCK, _limit(o) or DEFAULT_BLOCK), None
    if lengths is None:
        return 0, None
    choice = choose_cutoff(lengths, o.context_len, o.memory_len)
    return choice.cutoff, choice


def _sample(rows: list[Row], k: int, seed: int) -> list[Row]:
    """All rows, or k of them at random (in input order) when there are more."""
    if len(rows) <= k:
        return rows
    import random

    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), k))]


# ---- text fixes ---------------------------------------------------------------------------------

def _hits(rows: list[Row], search: Callable[[str], object], chunk: int = 512) -> list[int]:
    """Indexes of the rows whose texts `search` finds something in. Most rows of most files have none,
    so a chunk of rows is searched as one string first (one scan in C) and only the chunks with a hit
    row by row."""
    out = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        if search("\x1e".join(["\x1e".join(texts(r.data)) for r in part])):
            out += [start + i for i, r in enumerate(part) if any(search(t) for t in texts(r.data))]
    return out


def _replace(rows: list[Row], picked: list[int], result: StepResult) -> StepResult:
    """The rows with `result.kept` (a step's output for rows[picked]) in place of the picked ones."""
    out = list(rows)
    for i, new in zip(picked, result.kept):
        out[i] = new
    return StepResult(out, changed=result.changed, flagged=result.flagged)


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


_NON_ASCII = re.compile("[^\x00-\x7f]").search


def fix_mojibake(rows: list[Row]) -> StepResult:
    """UTF-8 text that was once decoded as Latin-1 / Windows-1252 ('Ã¦ËâÃ¤Â»Â¬' for the two characters
    of 'we' in Chinese), repaired with ftfy. Only `fix_encoding`: ftfy's full `fix_text` would also turn
    full-width punctuation into ASCII."""
    import ftfy
    from ftfy.badness import is_bad

    def fix(s: str) -> str:
        return s if s.isascii() else ftfy.fix_encoding(s)

    picked = [i for i in _hits(rows, _NON_ASCII) if is_bad("\n".join(texts(rows[i].data)))]
    if not picked:
        return StepResult(rows)
    return _replace(rows, picked, _map_rows([rows[i] for i in picked], fix, "fixed_mojibake", show=True))


# U+951F U+65A4 U+62F7: U+FFFD pairs re-read as GBK; ???: text saved in a code page that lacks its characters.
_UNREADABLE_CHAR = "[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\U000f0000-\U0010ffff]"
_UNREADABLE = re.compile(_UNREADABLE_CHAR + "|\u951f\u65a4\u62f7|\\?{3,}")
_SUSPECT = re.compile(_UNREADABLE_CHAR + "|\u951f|\\?\\?\\?").search


def garbled_share(s: str) -> float:
    """Share of the visible characters that are unreadable."""
    if not _SUSPECT(s):  # the usual case, decided by one scan in C
        return 0.0
    visible = len(s) - sum(map(s.count, " \n\t\r"))
    return sum(map(len, _UNREADABLE.findall(s))) / visible if visible else 0.0


def drop_garbled(rows: list[Row], share: float = 0.3) -> StepResult:
    bad = {}
    for i in _hits(rows, _SUSPECT):
        worst = max(map(garbled_share, texts(rows[i].data)))
        if worst >= share:
            bad[i] = worst
    if not bad:
        return StepResult(rows)
    return StepResult([r for i, r in enumerate(rows) if i not in bad],
                      [Removed(rows[i], "garbled", Msg("data.detail.garbled", share=f"{w:.0%}")) for i, w in bad.items()])


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _strip_control(s: str) -> str:
    return _CONTROL.sub("", s) if _CONTROL.search(s) else s


def strip_control(rows: list[Row]) -> StepResult:
    picked = _hits(rows, _CONTROL.search)
    if not picked:
        return StepResult(rows)
    return _replace(rows, picked, _map_rows([rows[i] for i in picked], _strip_control, "stripped_control"))


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


def empty_reason(data: dict) -> Msg | None:
    """Why a row has nothing to learn from (data.detail.empty.*), or None when it is fine."""
    if "messages" in data:
        msgs = data["messages"]
        if not any(m["role"] == "user" and m["content"].strip() for m in msgs):
            return Msg("data.detail.empty.no_question")
        if not any(m["role"] == "assistant" for m in msgs):
            return Msg("data.detail.empty.no_answer")
        for m in msgs:
            if m["role"] == "assistant" and not _visible_answer(m["content"]).strip():
                return Msg("data.detail.empty.blank_answer")
            if m["role"] == "user" and not m["content"].strip():
                return Msg("data.detail.empty.blank_question")
        return None
    if "chosen" in data:
        p = data["prompt"]
        if not (any(m["content"].strip() for m in p if m["role"] == "user") if isinstance(p, list) else p.strip()):
            return Msg("data.detail.empty.blank_prompt")
        if not data["chosen"].strip() or not data["rejected"].strip():
            return Msg("data.detail.empty.blank_pair")
        return None
    return None if data["text"].strip() else Msg("data.detail.empty.blank_text")


def drop_empty(rows: list[Row]) -> StepResult:
    kept, removed = [], []
    for r in rows:
        why = empty_reason(r.data)
        if why:
            removed.append(Removed(r, "empty", why))
        elif "chosen" in r.data and r.data["chosen"] == r.data["rejected"]:
            removed.append(Removed(r, "identical_pair", Msg("data.detail.identical_pair")))
        else:
            kept.append(r)
    return StepResult(kept, removed)


def drop_too_short(rows: list[Row], min_chars: int) -> StepResult:
    kept, removed = [], []
    for r in rows:
        n = len(_visible_answer(answer_text(r.data)).strip())
        if n < min_chars:
            removed.append(Removed(r, "too_short", Msg("data.detail.too_short", n=n, min=min_chars)))
        else:
            kept.append(r)
    return StepResult(kept, removed)


def find_placeholders(rows: list[Row], name: str = "", author: str = "") -> StepResult:
    """Rows with unfilled template placeholders ({{name}}, {author}, <NAME>) are flagged with what they
    hold; with a name or an author given, those are filled (and what is left stays flagged)."""
    picked = _hits(rows, placeholders.FIND.search)
    if not picked:
        return StepResult(rows)
    changed, flagged, out = [], [], list(rows)
    for i in picked:
        r = rows[i]
        if name or author:
            new = map_texts(r.data, lambda s: placeholders.fill(s, name, author))
            if new is not r.data:
                before, after = next((a, b) for a, b in zip(texts(r.data), texts(new)) if a != b)
                changed.append(Changed(r.number, "filled_placeholders", before[:300], after[:300]))
                r = out[i] = dataclasses.replace(r, data=new, tokens=None)
        left = list(dict.fromkeys(p for t in texts(r.data) for p in placeholders.found_in(t)))
        if left:
            detail = Msg("data.detail.placeholder", found=left)
            flagged.append({"number": r.number, "reason": "placeholder", "detail": str(detail),
                            "message": detail.to_dict()})
    return StepResult(out, changed=changed, flagged=flagged)


def personal_data(rows: list[Row], mode: str = "flag") -> StepResult:
    """flag: keep the row and list it; mask: replace with [EMAIL], [PHONE], ...; drop: remove the row.
    Only rows with a digit or an @ can hold any, so only those are scanned."""
    picked = set(_hits(rows, pii.MAYBE))
    if not picked:
        return StepResult(rows)
    kept, removed, changed, flagged = [], [], [], []
    for i, r in enumerate(rows):
        if i not in picked:
            kept.append(r)
            continue
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
            removed.append(Removed(r, "duplicate", Msg("data.detail.duplicate", number=first[key])))
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
            removed.append(Removed(r, "near_duplicate", Msg("data.detail.near_duplicate", share=f"{sim:.0%}",
                                                            number=rows[j].number)))
        else:
            kept.append(r)
    return StepResult(kept, removed)


def split_blocks(rows: list[Row], tokenizer, block_len: int = DEFAULT_BLOCK) -> StepResult:
    """Plain text for continued pre-training is never dropped for its length: a document longer than
    `block_len` tokens becomes blocks of `block_len` tokens (as training packs it), cut at token
    boundaries, each a row with the document's number."""
    if tokenizer is None:
        return StepResult(rows, note=Msg("data.note.no_tokenizer_blocks"))
    from studio.data.tokens import TokenCounter, token_offsets

    counter = TokenCounter(tokenizer)
    long_ = [i for i, r in enumerate(rows) if counter.upper_bound(r.data) > block_len]
    if not long_:
        return StepResult(rows)
    offsets = token_offsets(tokenizer, [rows[i].data["text"] for i in long_])
    split: dict[int, list[Row]] = {}
    for i, starts in zip(long_, offsets):
        if len(starts) <= block_len:
            continue
        text, r = rows[i].data["text"], rows[i]
        cuts = [starts[k] for k in range(0, len(starts), block_len)] + [len(text)]
        cuts[0] = 0
        blocks = [text[a:b].strip() for a, b in zip(cuts, cuts[1:])]
        split[i] = [make_row({"text": b}, r.number) for b in blocks if b]
    if not split:
        return StepResult(rows)
    out, changed = [], []
    for i, r in enumerate(rows):
        if i in split:
            out += split[i]
            changed.append(Changed(r.number, "split_into_blocks"))
        else:
            out.append(r)
    return StepResult(out, changed=changed)


def drop_too_long(rows: list[Row], tokenizer, cutoff_len: int = 2048, counter=None, mode: str = "drop",
                  limit: int | None = None) -> StepResult:
    """SFT and DPO rows over the cutoff in tokens: removed (`drop`), or kept and flagged for training to
    truncate (`truncate`). Only rows whose upper bound reaches the cutoff are tokenized (see tokens.py);
    `counter` carries the template skeletons and counts from earlier calls. Plain text is never dropped
    for its length (see split_blocks). A removed row's reason says how to keep it: a higher cutoff, or,
    past `limit` (what the model reads and memory holds), truncating."""
    if tokenizer is None:
        return StepResult(rows, note=Msg("data.note.no_tokenizer"))
    from studio.data.tokens import TokenCounter

    counter = counter or TokenCounter(tokenizer)
    todo = [r for r in rows if r.tokens is None and "text" not in r.data
            and (not counter.bound_holds or counter.upper_bound(r.data) > cutoff_len)]
    counter.count(todo)
    if not counter.bound_holds:  # this tokenizer can beat its bound: measure every row
        counter.count([r for r in rows if r.tokens is None and "text" not in r.data])
    kept, removed, flagged = [], [], []
    for r in rows:
        if r.tokens is not None and r.tokens > cutoff_len and "text" not in r.data:
            if mode == "truncate":
                kept.append(r)
                detail = Msg("data.detail.truncated", tokens=r.tokens, cutoff=cutoff_len)
                flagged.append({"number": r.number, "reason": "truncated", "detail": str(detail),
                                "message": detail.to_dict()})
            else:
                why = Msg("data.detail.too_long_limit", tokens=r.tokens, limit=limit, cutoff=cutoff_len) \
                    if limit and r.tokens > limit else Msg("data.detail.too_long", tokens=r.tokens, cutoff=cutoff_len)
                removed.append(Removed(r, "too_long", why))
        else:
            kept.append(r)
    return StepResult(kept, removed, flagged=flagged)
