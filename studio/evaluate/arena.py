"""The blind arena: base and fine-tuned answer the same prompt as "A" and "B", a person votes, and only
then learns which was which.

Blind by construction: a `Round` lives on the server; which model is A is drawn at random per round and
never leaves the server before a vote. What a client sees (`Round.public()`, every streamed update) is
only {"round_id", "prompt", "answer_a", "answer_b"}; round ids are random tokens, not counters, so
nothing can be inferred from them either. `vote()` writes the record to the run's votes.jsonl (fsync'd)
and only then returns the reveal.

One `Arena` per run, shared by every browser session (`get_arena(run_dir)`): one model in memory, and
votes from several people land in the same file. The rounds outlive the model: a training run takes the
memory back (`free_models`), and a round generated before it can still be voted on while it trains; the
model loads again for the next generation.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from studio.device_arbiter import ARBITER
from studio.errors import StudioError
from studio.evaluate import votes as votes_mod
from studio.evaluate.generate import GenerationSettings, ModelPair, device_turn, load_pair, stream_pair
from studio.evaluate.rows import EvalRow, validation_rows
from studio.evaluate.tally import Tally, rating_summary, tally, tally_by_voter

PUBLIC_KEYS = ("round_id", "prompt", "answer_a", "answer_b")
MAX_ROUNDS = 2000  # rounds kept in memory per run; older ones can no longer be voted on


def new_voter_token() -> str:
    """A random secret for one browser to keep (in its localStorage), so that a person who reloads the page
    stays one voter. It says nothing about the person and never leaves the server in a vote or a tally."""
    return secrets.token_hex(16)


def voter_id_for(token: str) -> str:
    """The anonymous id written to votes.jsonl and shown in the tally for a browser's token: a hash of it, so
    seeing someone's id does not let anyone vote as them."""
    return "v-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def new_voter_id() -> str:
    """An anonymous id for a voter with no token kept anywhere: random, so it says nothing about the person."""
    return voter_id_for(new_voter_token())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class Round:
    round_id: str
    messages: list[dict]
    sides: dict  # {"A": "base" | "finetuned", "B": the other}: server-side only until a vote
    settings: GenerationSettings
    answers: dict = field(default_factory=lambda: {"A": "", "B": ""})
    started: bool = False
    done: bool = False
    voters: set = field(default_factory=set)  # who voted (A/B) on this round
    raters: set = field(default_factory=set)  # who rated it

    @property
    def prompt(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    def public(self) -> dict:
        """All a client may see before voting."""
        return {"round_id": self.round_id, "prompt": self.prompt,
                "answer_a": self.answers["A"], "answer_b": self.answers["B"]}

    def record(self, voter_id: str) -> dict:
        """The round fields every votes.jsonl record carries."""
        return {"round_id": self.round_id, "time": _now(), "voter": voter_id, "prompt": self.prompt,
                "messages": self.messages, "answer_a": self.answers["A"], "answer_b": self.answers["B"],
                "sides": dict(self.sides),
                "answers": {self.sides["A"]: self.answers["A"], self.sides["B"]: self.answers["B"]},
                "settings": self.settings.to_dict()}


class Arena:
    """Blind rounds for one run. Thread-safe: many sessions call it at once."""

    def __init__(self, pair: ModelPair | None, run_dir: str | Path | None = None, *,
                 is_busy: Callable[[], bool] | None = None, rng: random.Random | None = None,
                 settings: GenerationSettings | None = None, device: str | None = None):
        self.pair = pair  # None until the first generation needs it, and again once freed for training
        self.run_dir = Path(run_dir or (pair.run_dir if pair else None) or ".")
        self.is_busy = is_busy
        self.device = device
        self._load_lock = threading.Lock()
        # SystemRandom: side assignment is unpredictable even to someone who saw earlier rounds.
        self.rng = rng or random.SystemRandom()
        self.settings = settings or GenerationSettings()
        self._rounds: OrderedDict[str, Round] = OrderedDict()
        self._lock = threading.Lock()
        self._prompts: list[EvalRow] | None = None

    @property
    def votes_path(self) -> Path:
        return self.run_dir / votes_mod.VOTES_FILE

    # ---- rounds ----------------------------------------------------------------------------------
    def start(self, prompt: str | list[dict], settings: GenerationSettings | None = None) -> dict:
        """A new round for `prompt` (a user message, or a conversation ending with one); returns its
        public view with empty answers. Call `stream(round_id)` to generate."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if not messages or not any(m["role"] == "user" and str(m.get("content", "")).strip() for m in messages):
            raise StudioError("compare.no_prompt")
        first = self.rng.choice(("base", "finetuned"))
        sides = {"A": first, "B": "finetuned" if first == "base" else "base"}
        rnd = Round(secrets.token_urlsafe(12), messages, sides, settings or self.settings)
        with self._lock:
            self._rounds[rnd.round_id] = rnd
            while len(self._rounds) > MAX_ROUNDS:
                self._rounds.popitem(last=False)
        return rnd.public()

    def stream(self, round_id: str) -> Iterator[dict]:
        """Public views of the round as both answers grow, side by side; generation holds the device
        (one request at a time, in order) and is refused while training runs."""
        rnd = self._get(round_id)
        with self._lock:
            if rnd.started:
                raise StudioError("eval.error.streaming")
            rnd.started = True
        try:
            with device_turn(self.is_busy):
                order = (rnd.sides["A"], rnd.sides["B"])
                for a, b in stream_pair(self.loaded_pair(), rnd.messages, rnd.settings, order):
                    rnd.answers = {"A": a, "B": b}
                    yield rnd.public()
            rnd.done = True
        finally:
            if not rnd.done:
                rnd.started = False  # failed or abandoned: the same round may be streamed again

    def ask(self, prompt: str | list[dict], settings: GenerationSettings | None = None) -> Iterator[dict]:
        """start() then stream(): what a "Send" button runs."""
        public = self.start(prompt, settings)
        yield public
        yield from self.stream(public["round_id"])

    def public(self, round_id: str) -> dict:
        return self._get(round_id).public()

    # ---- the models ------------------------------------------------------------------------------
    def loaded_pair(self) -> ModelPair:
        """The two models, loaded when first needed (seconds to minutes); hold `device_turn()` around it.
        Loading one run's models frees every other run's: only one pair is kept in memory."""
        with self._load_lock:
            if self.pair is None:
                free_models(keep=self)
                self.pair = load_pair(self.run_dir, device=self.device)
            return self.pair

    def models(self) -> ModelPair:
        """`loaded_pair()` for work that takes its own device turns (the checks): waits for a turn to load."""
        with device_turn(self.is_busy):
            return self.loaded_pair()

    def _get(self, round_id: str) -> Round:
        with self._lock:
            rnd = self._rounds.get(round_id)
        if rnd is None:
            raise StudioError("eval.error.round_gone")
        return rnd

    def _ready(self, round_id: str) -> Round:
        rnd = self._get(round_id)
        if not rnd.done:
            raise StudioError("eval.error.not_ready")
        return rnd

    # ---- judging ---------------------------------------------------------------------------------
    def vote(self, round_id: str, choice: str, voter_id: str) -> dict:
        """Record the vote durably, then reveal: {"round_id", "vote", "sides", "winner", "tally"}."""
        if choice not in votes_mod.CHOICES:
            raise StudioError("eval.error.bad_vote")
        rnd = self._ready(round_id)
        with self._lock:
            if voter_id in rnd.voters:
                raise StudioError("eval.error.voted")
            rnd.voters.add(voter_id)
        record = {"kind": "vote", **rnd.record(voter_id), "vote": choice,
                  "winner": votes_mod.winner_of(choice, rnd.sides)}
        try:
            votes_mod.append_record(self.votes_path, record)  # before the reveal, always
        except BaseException:
            with self._lock:
                rnd.voters.discard(voter_id)
            raise
        return {"round_id": round_id, "vote": choice, "sides": dict(rnd.sides), "winner": record["winner"],
                "tally": self.tally().to_dict()}

    def rate(self, round_id: str, voter_id: str, rating_a: int, rating_b: int) -> dict:
        """Ratings mode: score each answer 1-5; recorded durably, then revealed like a vote."""
        ratings = {}
        for side, value in (("A", rating_a), ("B", rating_b)):
            try:
                score = float(value)  # a slider gives 4.0, a radio "4"
            except (TypeError, ValueError):
                score = 0.0
            if not (score.is_integer() and 1 <= score <= 5):
                raise StudioError("eval.error.bad_score")
            ratings[side] = int(score)
        rnd = self._ready(round_id)
        with self._lock:
            if voter_id in rnd.raters:
                raise StudioError("eval.error.rated")
            rnd.raters.add(voter_id)
        record = {"kind": "rating", **rnd.record(voter_id), "ratings": ratings,
                  "scores": {rnd.sides["A"]: ratings["A"], rnd.sides["B"]: ratings["B"]}}
        try:
            votes_mod.append_record(self.votes_path, record)
        except BaseException:
            with self._lock:
                rnd.raters.discard(voter_id)
            raise
        return {"round_id": round_id, "ratings": ratings, "sides": dict(rnd.sides), "scores": record["scores"],
                "summary": rating_summary(self.records("rating")).to_dict()}

    # ---- reading back ----------------------------------------------------------------------------
    def records(self, kind: str | None = None) -> list[dict]:
        return votes_mod.read_records(self.votes_path, kind)

    def tally(self) -> Tally:
        return tally(self.records("vote"))

    def tally_by_voter(self) -> dict[str, Tally]:
        return tally_by_voter(self.records("vote"))

    def save_preferences(self, out_path: str | Path | None = None) -> tuple[Path, int]:
        return votes_mod.save_preference_pairs(self.run_dir, out_path)

    def sample_prompt(self) -> list[dict] | None:
        """A prompt (conversation up to the answer) from the run's validation data, for the "sample" button."""
        if self._prompts is None:
            self._prompts = validation_rows(self.run_dir)
        return self.rng.choice(self._prompts).messages if self._prompts else None


# ---- one arena per run, shared by every session -----------------------------------------------------
_arenas: dict[str, Arena] = {}
_arenas_lock = threading.Lock()


def get_arena(run_dir: str | Path, *, is_busy: Callable[[], bool] | None = None, device: str | None = None) -> Arena:
    """The run's arena, shared by every session. Cheap: its models load on the first generation (and the
    rounds, the votes and the tally need none, so judging goes on while a run trains)."""
    key = str(Path(run_dir).resolve())
    with _arenas_lock:
        arena = _arenas.get(key)
        if arena is None:
            arena = _arenas[key] = Arena(None, run_dir, is_busy=is_busy, device=device)
        elif is_busy is not None:
            arena.is_busy = is_busy
    return arena


def free_models(keep: Arena | None = None) -> None:
    """Free every loaded comparison model but `keep`'s; the arenas and their rounds stay."""
    with _arenas_lock:
        arenas = [a for a in _arenas.values() if a is not keep and a.pair is not None]
    for arena in arenas:
        _release(arena)


def close_arenas() -> None:
    """Forget every arena, its rounds and its models."""
    with _arenas_lock:
        arenas = list(_arenas.values())
        _arenas.clear()
    for arena in arenas:
        _release(arena)


# A training run gets the memory these models hold. No generation runs then (the arbiter lets a run claim the
# device only when none holds or awaits a turn), so no one is using them; the rounds stay to be judged.
ARBITER.on_training_claim(free_models)


def _release(arena: Arena) -> None:
    import gc

    arena.pair = None  # type: ignore[assignment]
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
