"""Split train / validation, rebalance reasoning vs dialog, and mix in general chat and refusals.

Everything random takes a seed, so the same data and settings give the same files. Mixed-in rows
go to the training side only: validation should measure the user's own task.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from studio.data.rows import Removed, Row, data_format, make_row
from studio.messages import Msg
from studio.paths import ASSETS_DIR

GENERAL_CHAT = ASSETS_DIR / "general_chat.jsonl"
REFUSALS = ASSETS_DIR / "refusals.jsonl"


@dataclass
class MixOptions:
    eval_share: float = 0.1
    general_share: float = 0.05
    refusal_share: float = 0.0
    reasoning_share: float = 0.25
    seed: int = 42


@dataclass
class MixResult:
    train: list[Row]
    eval: list[Row]
    removed: list[Removed]  # rows left out by rebalancing
    counts: dict
    notes: list[Msg] = field(default_factory=list)


def split(rows: list[Row], eval_share: float = 0.1, seed: int = 42) -> tuple[list[Row], list[Row]]:
    """A seeded shuffle, then the first share for validation (at least one row when asked for any)."""
    if eval_share <= 0 or len(rows) < 2:
        return list(rows), []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(rows) - 1, max(1, round(len(rows) * eval_share)))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def rebalance(rows: list[Row], reasoning_share: float = 0.25, seed: int = 42) -> tuple[list[Row], list[Removed], Msg | None]:
    """Downsample the larger of reasoning / dialog rows to reach the share. Keeps input order."""
    reasoning = [i for i, r in enumerate(rows) if r.kind == "reasoning"]
    dialog = [i for i, r in enumerate(rows) if r.kind == "dialog"]
    if not reasoning or not dialog or not 0 < reasoning_share < 1:
        return list(rows), [], None
    if len(reasoning) / (len(reasoning) + len(dialog)) > reasoning_share:
        keep_n, side = round(len(dialog) * reasoning_share / (1 - reasoning_share)), reasoning
    else:
        keep_n, side = round(len(reasoning) * (1 - reasoning_share) / reasoning_share), dialog
    keep_n = max(1, keep_n)
    if keep_n >= len(side):
        return list(rows), [], None
    dropped = set(random.Random(seed).sample(side, len(side) - keep_n))
    share, rest = f"{reasoning_share:.0%}", f"{1 - reasoning_share:.0%}"
    detail = Msg("data.detail.rebalanced", share=share, rest=rest)
    return ([r for i, r in enumerate(rows) if i not in dropped],
            [Removed(rows[i], "rebalanced", detail) for i in sorted(dropped)],
            Msg("data.note.rebalanced", share=share, n=len(dropped), kind=Msg(f"data.rowkind.{rows[side[0]].kind}")))


def load_mixin(path: str | Path) -> list[Row]:
    """Rows of a canonical JSONL shipped in assets/; an absent or unreadable file gives no rows."""
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    with open(p, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and isinstance(data.get("messages"), list):
                rows.append(make_row(data, i))
    return rows


def sample(pool: list[Row], n: int, seed: int) -> list[Row]:
    return random.Random(seed).sample(pool, min(n, len(pool))) if n > 0 else []


def prepare(rows: list[Row], options: MixOptions | None = None, general_path: str | Path = GENERAL_CHAT,
            refusals_path: str | Path = REFUSALS) -> MixResult:
    """Rebalance, split, then mix general chat and refusals into the training side and shuffle it."""
    o = options or MixOptions()
    notes = []
    rows, removed, note = rebalance(rows, o.reasoning_share, o.seed)
    if note:
        notes.append(note)
    train, eval_ = split(rows, o.eval_share, o.seed)
    counts = {"general": 0, "refusals": 0, "rebalanced_away": len(removed)}
    is_sft = bool(rows) and data_format(rows[0].data) == "sft"
    rest = 1 - o.general_share - o.refusal_share
    if (o.general_share or o.refusal_share) and not is_sft:
        notes.append(Msg("data.note.mix_sft_only"))
    elif (o.general_share or o.refusal_share) and rest <= 0:
        notes.append(Msg("data.note.mix_too_much"))
    elif is_sft:
        base = len(train)
        for key, share, path in (("general", o.general_share, general_path),
                                 ("refusals", o.refusal_share, refusals_path)):
            want = round(share * base / rest)
            if want <= 0:
                continue
            pool = load_mixin(path)
            if not pool:
                notes.append(Msg(f"data.note.mix_missing.{key}", file=Path(path).name))
                continue
            added = sample(pool, want, o.seed)
            if len(added) < want:
                notes.append(Msg(f"data.note.mix_short.{key}", n=len(added), want=want))
            train += added
            counts[key] = len(added)
        random.Random(o.seed).shuffle(train)
    counts.update(train=len(train), eval=len(eval_),
                  reasoning=sum(r.kind == "reasoning" for r in train), dialog=sum(r.kind == "dialog" for r in train))
    return MixResult(train, eval_, removed, counts, notes)
