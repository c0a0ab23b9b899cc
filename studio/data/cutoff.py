"""The cutoff length: chosen from the data and the model, explained in plain words.

`choose_cutoff` is a pure function of the rows' token lengths, the model's context length and an
optional upper bound in tokens (what fits in memory per the run plan; None when unknown). It covers
at least `coverage` of the rows (99% by default) when the limits allow, never goes under MIN_CUTOFF
unless they say so, and says what a higher or lower cutoff would cost, as catalog messages. `model_context_length` reads the model's context from
its config (a local folder's config.json, or the Hub's config.json already in the local cache)
without loading weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from studio.messages import Msg

COVERAGE = 0.99
# The cutoff only removes (or truncates) rows; training reads short rows whole whatever it is. Under this
# many tokens a row costs so little memory and time that removing it saves nothing worth a lost row, so the
# chosen cutoff is never lower (unless the model or memory is). It also spares measuring short rows:
# a row whose UTF-8 size is under the cutoff cannot reach it (tokens.py).
MIN_CUTOFF = 512
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


@dataclass
class CutoffChoice:
    cutoff: int
    covered: float  # share of rows at or under the cutoff
    over: int  # rows longer than it
    limit: int | None  # the smaller of the model's context and the memory bound, when known
    messages: list[Msg] = field(default_factory=list)


def _round_up(n: int) -> int:
    """A round number of tokens, at least MIN_CUTOFF: a multiple of 64 up to 1024, of 256 above."""
    step = 64 if n <= 1024 else 256
    return max(MIN_CUTOFF, step * math.ceil(n / step))


def _share(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}%" if n and (k == 0 or 100 * k / n >= 1) else ("<1%" if n else "0%")


def choose_cutoff(lengths: list[int], context_len: int | None, upper_bound: int | None = None,
                  coverage: float = COVERAGE) -> CutoffChoice:
    """The cutoff that keeps `coverage` of the rows whole, within the model's context and the memory
    bound, with the plain-words explanation (what it keeps, what a higher or lower one costs)."""
    limits = [x for x in (context_len, upper_bound) if x and x > 0]
    limit = min(limits) if limits else None
    n = len(lengths)
    if not n:
        cutoff = min(2048, limit) if limit else 2048
        return CutoffChoice(cutoff, 1.0, 0, limit, [Msg("data.cutoff.no_rows", cutoff=cutoff)])
    ordered = sorted(lengths)
    need = ordered[min(n - 1, max(0, math.ceil(coverage * n) - 1))]
    cutoff = _round_up(need)
    msgs = []
    if limit and cutoff > limit:
        cutoff = limit
        which = "data.cutoff.capped_context" if limit == context_len else "data.cutoff.capped_memory"
        over = sum(1 for x in ordered if x > cutoff)
        msgs.append(Msg(which, limit=limit, n=over, share=_share(over, n)))
    over = sum(1 for x in ordered if x > cutoff)
    covered = 1 - over / n
    msgs.insert(0, Msg("data.cutoff.chosen", cutoff=cutoff, share=_share(n - over, n), longest=ordered[-1],
                       n=over))
    lower = _round_up(cutoff // 2)  # half, or MIN_CUTOFF: the lowest this function ever proposes
    if lower < cutoff:
        over_lower = sum(1 for x in ordered if x > lower)
        msgs.append(Msg("data.cutoff.lower", cutoff=lower, n=over_lower, share=_share(over_lower, n)))
    if over and (not limit or cutoff < limit):
        higher = min(_round_up(ordered[-1]), limit) if limit else _round_up(ordered[-1])
        msgs.append(Msg("data.cutoff.higher", cutoff=higher, times=f"{higher / cutoff:.1f}"))
    if over:
        msgs.append(Msg("data.cutoff.rest", n=over))
    return CutoffChoice(cutoff, covered, over, limit, msgs)


def context_from_config(config: dict) -> int | None:
    """The context length a model's config.json states, or None."""
    for key in _CONTEXT_KEYS:
        v = config.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    text = config.get("text_config")
    return context_from_config(text) if isinstance(text, dict) else None


def model_context_length(model: str | None, tokenizer=None) -> int | None:
    """The model's context length from its config, never its weights: a local folder's config.json, or a
    catalog / Hub model's config.json when it is in the local Hugging Face cache (nothing is downloaded).
    Otherwise the tokenizer's model_max_length when it is a real number; None when nothing says."""
    name = str(model or "").strip()
    config = None
    if name:
        p = Path(name).expanduser()
        if p.is_dir() and (p / "config.json").is_file():
            config = p / "config.json"
        else:
            config = _cached_config(name)
    if config is not None:
        try:
            found = context_from_config(json.loads(Path(config).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            found = None
        if found:
            return found
    n = getattr(tokenizer, "model_max_length", None)
    return int(n) if isinstance(n, int) and 0 < n < 10_000_000 else None


def _cached_config(name: str) -> str | None:
    try:
        from studio.models.catalog import find

        entry = find(name)
        repo = entry.hub_id if entry is not None else name
        if repo.count("/") != 1:
            return None
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, "config.json")
        return found if isinstance(found, str) else None
    except Exception:  # noqa: BLE001 - no cache, no catalog: the context is unknown
        return None
