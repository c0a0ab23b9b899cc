"""The Chat tab's engine on a tiny random Llama with a LoRA adapter: several turns streamed, the base/fine-tuned
switch on one model in memory, stop, waiting while training holds the device, and keeping a conversation."""

import json
import threading

import pytest

from test_evaluate_models import pair, tiny_run  # noqa: F401  (fixtures)


@pytest.fixture()
def listed(tiny_run, monkeypatch):  # noqa: F811
    """The tiny run as one the app lists (checked_run only accepts those)."""
    from studio.evaluate import chat

    monkeypatch.setattr(chat, "checked_run", lambda run_dir, refusal: tiny_run)
    return str(tiny_run)


def _last(events):
    out = {}
    for e in events:
        out.update(e)
    return out


def test_stream_answer_matches_the_compare_stream(pair):  # noqa: F811
    from studio.evaluate.generate import GenerationSettings, device_turn, stream_answer, stream_pair

    settings = GenerationSettings(max_new_tokens=12)
    with device_turn(lambda: False):
        parts = list(stream_answer(pair, "hello world", "finetuned", settings))
        base = list(stream_answer(pair, "hello world", "base", settings))[-1]
        both = list(stream_pair(pair, "hello world", settings))[-1]
    assert len(parts) > 2 and parts[-1] == both[1] and base == both[0]
    assert all(parts[-2].startswith(p) for p in parts[:-2])  # it grows


def test_two_turns_and_the_switch(listed, pair):  # noqa: F811
    from studio.evaluate.chat import conversation, reply

    free = lambda: False  # noqa: E731
    first = _last(reply(listed, [], "hello world", "Be brief.", "finetuned", 0.0, 10, is_busy=free))
    chat = first["chat"]
    assert [m["role"] for m in chat] == ["user", "assistant"] and chat[0]["content"] == "hello world"
    assert "fine-tuned" in first["status"]
    # The page sends the history back in its own shape (content as parts): the second turn reads it.
    page = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in chat]
    second = _last(reply(listed, page, "and again?", "Be brief.", "base", 0.0, 10, is_busy=free))
    assert [m["role"] for m in second["chat"]] == ["user", "assistant", "user", "assistant"]
    assert "base" in second["status"]
    assert conversation("Be brief.", second["chat"])[0] == {"role": "system", "content": "Be brief."}
    # Greedy: the base answers differently, and after it the adapter is back on: the same question to the
    # fine-tuned model gets the same answer as before (one model in memory, the adapter toggled).
    base = _last(reply(listed, [], "hello world", "Be brief.", "base", 0.0, 10, is_busy=free))
    again = _last(reply(listed, [], "hello world", "Be brief.", "finetuned", 0.0, 10, is_busy=free))
    assert base["chat"][-1]["content"] != chat[-1]["content"]
    assert again["chat"][-1] == chat[-1]


def test_stop_keeps_the_answer_so_far(listed):
    from studio.evaluate.chat import reply, request_stop

    events = reply(listed, [], "hello world", "", "finetuned", 0.0, 200, chat_id="c1", is_busy=lambda: False)
    partials = []
    for e in events:
        if "chat" in e and len(e["chat"]) == 2:
            partials.append(e["chat"][-1]["content"])
            if len(partials) == 3:
                request_stop("c1")
        last = e
    assert "Stopped" in last["status"]
    assert len(partials) < 50  # it did not run on to 200 tokens


def test_it_waits_while_training_holds_the_device_and_says_so(listed):
    from studio.evaluate.chat import reply, request_stop

    busy = {"n": 0}

    def is_busy():  # training holds the device for the first three looks
        busy["n"] += 1
        return busy["n"] <= 3

    events = list(reply(listed, [], "hello", "", "finetuned", 0.0, 4, is_busy=is_busy, poll_s=0.01))
    waits = [e["status"] for e in events if "waited" in e.get("status", "")]
    assert waits and "training run is using the device" in waits[0]
    assert "Answered" in events[-1]["status"] and events[-1]["chat"][-1]["role"] == "assistant"
    # Stop while waiting: nothing goes to the model.
    timer = threading.Timer(0.05, request_stop, ["c2"])
    timer.start()
    last = _last(reply(listed, [], "hello", "", "finetuned", 0.0, 4, chat_id="c2", is_busy=lambda: True, poll_s=0.01))
    assert "not sent" in last["status"] and last["chat"][-1]["role"] == "user"


def test_keep_appends_to_the_browsers_file_and_offers_it(tmp_path, monkeypatch):
    from studio.evaluate.chat import CUT_MARK, keep, use_kept
    from studio.messages import say

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    assert "Nothing to keep" in keep([], "", "s1")["status"]
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there" + CUT_MARK}]
    out = keep(history, "Be kind.", "s1")
    assert out["kept"]["rows"] == 1
    out = keep(history + [{"role": "user", "content": "more"}, {"role": "assistant", "content": "ok"}], "", "s1")
    path = out["kept"]["train_file"]
    assert path.startswith(str(tmp_path / "sessions" / "s1")) and out["kept"]["rows"] == 2
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    assert rows[0]["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"},
                                   {"role": "assistant", "content": "hello there"}]
    assert len(rows[1]["messages"]) == 4
    used = use_kept(out["kept"], "zh")
    assert used["data"] == {"train_file": path, "eval_file": "", "format": "sft", "rows": 2, "source": "chat"}
    assert used["status"] == "✅ " + say("chat.used", "zh", n=2, path=path)
    assert keep(history, "", "s2")["kept"]["train_file"] != path  # another browser, another file


def test_a_wrong_run_or_empty_message_is_one_line():
    from studio.evaluate.chat import reply

    out = _last(reply("/nowhere", [], "hi", lang="zh", is_busy=lambda: False))
    assert out["status"].startswith("⚠️") and out["chat"] == []
