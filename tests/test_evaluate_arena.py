"""The blind arena without a model: side assignment, what a client may see, judging rules, the device queue."""

import json
import random
import threading
import time

import pytest

from studio.errors import StudioError
from studio.evaluate import votes as votes_mod
from studio.evaluate.arena import PUBLIC_KEYS, Arena, new_voter_id
from studio.device_arbiter import ARBITER as DEVICE_LOCK
from studio.device_arbiter import DeviceBusy, FifoLock
from studio.evaluate.generate import device_turn


def _finished_round(arena, prompt="Is this good?", a="answer one", b="answer two"):
    """A round as if both answers had streamed in (generation itself is tested with a model elsewhere)."""
    public = arena.start(prompt)
    rnd = arena._rounds[public["round_id"]]
    rnd.answers, rnd.started, rnd.done = {"A": a, "B": b}, True, True
    return public["round_id"], rnd


def test_sides_are_balanced_over_many_prompts(tmp_path):
    arena = Arena(None, tmp_path, rng=random.Random(1234))
    n = 2000
    base_on_a = sum(arena._rounds[arena.start(f"prompt {i}")["round_id"]].sides["A"] == "base" for i in range(n))
    # Binomial(2000, 0.5): sd 22; 5 sd either side would fail about once in 3 million runs.
    assert abs(base_on_a - n / 2) < 5 * (n ** 0.5) / 2
    # Both orders occur for the same prompt, so a repeated prompt reveals nothing either.
    sides = {arena._rounds[arena.start("same prompt")["round_id"]].sides["A"] for _ in range(50)}
    assert sides == {"base", "finetuned"}


def test_default_rng_is_unpredictable_and_balanced(tmp_path):
    arena = Arena(None, tmp_path)  # SystemRandom
    firsts = [arena._rounds[arena.start("p")["round_id"]].sides["A"] for _ in range(400)]
    assert 140 < firsts.count("base") < 260


def test_public_view_carries_no_identity(tmp_path):
    arena = Arena(None, tmp_path)
    public = arena.start([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello?"}])
    assert tuple(public) == PUBLIC_KEYS
    assert public["prompt"] == "Hello?" and public["answer_a"] == "" and public["answer_b"] == ""
    text = json.dumps(public)
    assert "base" not in text and "finetuned" not in text and "sides" not in text
    round_id, _ = _finished_round(arena)
    assert tuple(arena.public(round_id)) == PUBLIC_KEYS
    # Round ids are random tokens, not counters that could be matched to anything.
    ids = {arena.start("x")["round_id"] for _ in range(100)}
    assert len(ids) == 100 and all(len(i) >= 16 for i in ids)


def test_vote_is_logged_before_the_reveal(tmp_path, monkeypatch):
    arena = Arena(None, tmp_path)
    round_id, rnd = _finished_round(arena, a="first", b="second")
    voter = new_voter_id()

    # If the vote cannot be written, there is no reveal, and the voter may try again.
    def broken(path, record):
        raise OSError("disk full")

    monkeypatch.setattr(votes_mod, "append_record", broken)
    with pytest.raises(OSError):
        arena.vote(round_id, "A", voter)
    assert not (tmp_path / "votes.jsonl").exists()

    monkeypatch.undo()
    reveal = arena.vote(round_id, "A", voter)
    assert reveal["sides"] == rnd.sides and reveal["winner"] == rnd.sides["A"]
    rec = votes_mod.read_records(tmp_path / "votes.jsonl")[0]
    assert rec["kind"] == "vote" and rec["vote"] == "A" and rec["voter"] == voter
    assert rec["sides"] == rnd.sides and rec["prompt"] == "Is this good?"
    assert rec["answer_a"] == "first" and rec["answers"][rnd.sides["A"]] == "first"
    assert rec["time"]
    assert reveal["tally"]["total"] == 1
    with pytest.raises(StudioError, match="already voted"):
        arena.vote(round_id, "B", voter)
    # Another person may judge the same round.
    assert arena.vote(round_id, "tie", new_voter_id())["winner"] == "tie"
    assert arena.tally().ties == 1 and arena.tally().voters == 2


def test_judging_rules(tmp_path):
    arena = Arena(None, tmp_path)
    public = arena.start("unanswered")
    with pytest.raises(StudioError, match="Wait until both answers"):
        arena.vote(public["round_id"], "A", "v")
    round_id, _ = _finished_round(arena)
    with pytest.raises(StudioError):
        arena.vote(round_id, "C", "v")
    with pytest.raises(StudioError, match="no longer available"):
        arena.vote("forged-id", "A", "v")
    with pytest.raises(StudioError, match="prompt"):
        arena.start("   ")


def test_ratings_mode(tmp_path):
    arena = Arena(None, tmp_path)
    round_id, rnd = _finished_round(arena)
    with pytest.raises(StudioError, match="1 \\(poor\\) to 5"):
        arena.rate(round_id, "v1", 0, 3)
    with pytest.raises(StudioError):
        arena.rate(round_id, "v1", 2.5, 3)
    reveal = arena.rate(round_id, "v1", "4", 2.0)  # a radio gives "4", a slider 2.0
    assert reveal["ratings"] == {"A": 4, "B": 2}
    assert reveal["scores"] == {rnd.sides["A"]: 4, rnd.sides["B"]: 2}
    rec = votes_mod.read_records(tmp_path, "rating")[0]
    assert rec["scores"] == reveal["scores"] and rec["ratings"] == {"A": 4, "B": 2}
    assert reveal["summary"]["n"] == 1
    with pytest.raises(StudioError, match="already rated"):
        arena.rate(round_id, "v1", 3, 3)


def test_many_voters_at_once(tmp_path):
    arena = Arena(None, tmp_path)
    rounds = [_finished_round(arena, prompt=f"p{i}")[0] for i in range(40)]
    errors = []

    def session(k):
        voter = new_voter_id()
        try:
            for rid in rounds[k::4]:
                arena.vote(rid, random.choice(votes_mod.CHOICES), voter)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert arena.tally().total == 40 and arena.tally().voters == 4


def test_training_run_blocks_generation_politely():
    with pytest.raises(DeviceBusy) as err:
        with device_turn(lambda: True):
            pass
    assert "training" in str(err.value).lower() and "训练" in err.value.text("zh")
    assert DEVICE_LOCK.queued() == 0  # a refusal holds nothing


def test_fifo_lock_serves_in_order_and_times_out():
    lock = FifoLock()
    order = []
    lock.acquire()

    def worker(k):
        lock.acquire()
        order.append(k)
        lock.release()

    threads = []
    for k in range(5):
        t = threading.Thread(target=worker, args=(k,))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # each asks after the previous one
    assert lock.queued() == 6
    assert lock.acquire(timeout=0.05) is False  # gives up; its ticket is skipped later
    lock.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]
    assert lock.queued() == 0 and lock.acquire(timeout=1) is True
