"""Format detection and conversion to TRL's standard formats, for the shapes people arrive with."""

import json

import pytest

from studio.data.detect import Mapping, detect, to_rows
from studio.data.read import Table, read_file
from studio.errors import StudioError


def table(rows, file_type="jsonl"):
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return Table(rows, cols, list(range(1, len(rows) + 1)), file_type)


def convert(rows, **override):
    t = table(rows)
    m = detect(t)
    for k, v in override.items():
        setattr(m, k, v)
    return m, to_rows(t, m)


def user(c):
    return {"role": "user", "content": c}


def bot(c):
    return {"role": "assistant", "content": c}


def test_alpaca_with_input_system_and_history():
    m, out = convert([
        {"instruction": "Summarise", "input": "A long text.", "output": "Short.", "system": "Be brief.",
         "history": [["Hi", "Hello!"]]},
        {"instruction": "Say hi", "input": "", "output": "Hi"},
    ])
    assert m.kind == "instruction" and (m.prompt, m.input, m.response) == ("instruction", "input", "output")
    assert out.format == "sft"
    assert out.rows[0].data == {"messages": [{"role": "system", "content": "Be brief."}, user("Hi"), bot("Hello!"),
                                             user("Summarise\n\nA long text."), bot("Short.")]}
    assert out.rows[1].data == {"messages": [user("Say hi"), bot("Hi")]}


@pytest.mark.parametrize("q,a", [("prompt", "response"), ("prompt", "completion"), ("question", "answer"),
                                 ("Question", "Answer"), ("问题", "答案"), ("提问", "回答"), ("query", "reply")])
def test_two_column_instruction_shapes(q, a):
    m, out = convert([{q: "1+1?", a: 2}])
    assert m.kind == "instruction" and (m.prompt, m.response) == (q, a)
    assert out.rows[0].data == {"messages": [user("1+1?"), bot("2")]}  # numbers become text


def test_chinese_alpaca_headers():
    m, out = convert([{"指令": "翻译成英文", "输入": "你好", "输出": "Hello"}])
    assert (m.prompt, m.input, m.response) == ("指令", "输入", "输出")
    assert out.rows[0].data["messages"][0]["content"] == "翻译成英文\n\n你好"


def test_scalars_become_text():
    _, out = convert([{"question": 3.0, "answer": True}, {"question": 12345678901, "answer": None},
                      {"question": 0.5, "answer": float("nan")}])
    assert [r.data["messages"][0]["content"] for r in out.rows] == ["3", "12345678901", "0.5"]
    assert [r.data["messages"][1]["content"] for r in out.rows] == ["true", "", ""]


def test_openai_messages_with_system_and_content_parts():
    msgs = [{"role": "system", "content": "You help."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye!"}]
    m, out = convert([{"messages": msgs}])
    assert m.kind == "conversation"
    assert out.rows[0].data["messages"][1] == user("Hi") and len(out.rows[0].data["messages"]) == 5


def test_sharegpt_conversations_with_system_column_and_function_role():
    conv = [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "{\"name\": \"w\"}"},
            {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "It is sunny."}]
    m, out = convert([{"conversations": conv, "system": "You are a weather bot."}])
    assert (m.kind, m.messages, m.system) == ("conversation", "conversations", "system")
    roles = [x["role"] for x in out.rows[0].data["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]


def test_unknown_role_is_a_malformed_row_not_a_crash():
    _, out = convert([{"conversations": [{"from": "alien", "value": "?"}]},
                      {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}])
    assert len(out.rows) == 1
    assert out.removed[0].reason == "malformed" and "alien" in str(out.removed[0].detail) and out.removed[0].number == 1


def test_messages_as_json_text_in_a_csv_cell(tmp_path):
    p = tmp_path / "c.csv"
    cell = json.dumps([user("hi"), bot("hello")]).replace('"', '""')
    p.write_text(f'messages\n"{cell}"\n', encoding="utf-8")
    t = read_file(p)
    out = to_rows(t, detect(t))
    assert out.rows[0].data == {"messages": [user("hi"), bot("hello")]}


@pytest.mark.parametrize("thinking", ["thinking", "cot", "reasoning", "思考过程"])
def test_reasoning_rows_render_think_blocks_and_are_marked(thinking):
    m, out = convert([{"question": "2+2?", thinking: "2 and 2 make 4.", "answer": "4"},
                      {"question": "Hi", thinking: "", "answer": "Hello"}])
    assert m.kind == "reasoning" and m.thinking == thinking
    assert out.rows[0].data["messages"][1]["content"] == "<think>\n2 and 2 make 4.\n</think>\n\n4"
    assert [r.kind for r in out.rows] == ["reasoning", "dialog"]


def test_reasoning_content_field_in_messages():
    _, out = convert([{"messages": [user("2+2?"), {"role": "assistant", "content": "4", "reasoning_content": "add"}]}])
    assert out.rows[0].data["messages"][1]["content"] == "<think>\nadd\n</think>\n\n4"
    assert out.rows[0].kind == "reasoning"


def test_dpo_triples_string_prompt():
    m, out = convert([{"prompt": "Best pet?", "chosen": "A cat.", "rejected": "A rock."}])
    assert m.kind == "preference" and out.format == "preference"
    assert out.rows[0].data == {"prompt": "Best pet?", "chosen": "A cat.", "rejected": "A rock."}


def test_llamafactory_sharegpt_preference_gives_list_prompts_for_every_row():
    rows = [{"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello!"},
             "rejected": {"from": "gpt", "value": "Go away."}},
            {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Help?"}],
             "chosen": {"from": "gpt", "value": "Sure."}, "rejected": {"from": "gpt", "value": "No."}}]
    m, out = convert(rows)
    assert (m.kind, m.messages) == ("preference", "conversations")
    # one prompt type per file (Arrow cannot mix strings and lists in a column)
    assert out.rows[0].data == {"prompt": [user("Hi")], "chosen": "Hello!", "rejected": "Go away."}
    assert out.rows[1].data["prompt"] == [{"role": "system", "content": "Be kind."}, user("Help?")]


def test_alpaca_preference_and_trl_implicit_prompt():
    _, out = convert([{"instruction": "Fix", "input": "teh", "chosen": "the", "rejected": "teh"}])
    assert out.rows[0].data == {"prompt": "Fix\n\nteh", "chosen": "the", "rejected": "teh"}
    _, out = convert([{"chosen": [user("Hi"), bot("Hello!")], "rejected": [user("Hi"), bot("What.")]}])
    assert out.rows[0].data == {"prompt": "Hi", "chosen": "Hello!", "rejected": "What."}


KTO = [{"prompt": "Capital of France?", "completion": "Paris.", "label": True},
       {"prompt": "Capital of France?", "completion": "Lyon.", "label": False},
       {"prompt": "2+2?", "completion": "5", "label": "false"},
       {"prompt": "Hi", "completion": "Hello!", "label": 1}]


def test_unpaired_labels_never_train_on_bad_answers():
    m, out = convert(KTO)
    assert m.kind == "unpaired" and out.format == "sft"
    answers = [r.data["messages"][-1]["content"] for r in out.rows]
    assert answers == ["Paris.", "Hello!"]
    assert sorted((r.number, r.reason) for r in out.removed) == [(2, "labelled_bad"), (3, "labelled_bad")]
    assert all("_label" not in r.data for r in out.rows)


def test_unpaired_labels_can_pair_into_preference_triples():
    m, out = convert(KTO, label_mode="pairs")
    assert out.format == "preference"
    assert [r.data for r in out.rows] == [{"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}]
    assert sorted((r.number, r.reason) for r in out.removed) == [(3, "unpaired"), (4, "unpaired")]


def test_text_column_and_txt_file(tmp_path):
    m, out = convert([{"text": "Doc one."}, {"text": 42}])
    assert m.kind == "text" and out.format == "text"
    assert [r.data for r in out.rows] == [{"text": "Doc one."}, {"text": "42"}]
    p = tmp_path / "corpus.txt"
    p.write_text("line one\nline two\n", encoding="utf-8")
    t = read_file(p)
    assert [r.data for r in to_rows(t, detect(t)).rows] == [{"text": "line one"}, {"text": "line two"}]


def test_unknown_columns_name_what_was_found_and_expected():
    t = table([{"foo": "a", "bar": "b"}])
    m = detect(t)
    assert m.kind == ""
    with pytest.raises(StudioError) as e:
        to_rows(t, m)
    assert "foo, bar" in str(e.value) and "instruction/input/output" in str(e.value)


def test_the_user_can_map_any_two_columns():
    t = table([{"q": "Why?", "a": "Because."}])
    m = Mapping(kind="instruction", prompt="q", response="a", columns=t.columns)
    assert to_rows(t, m).rows[0].data == {"messages": [user("Why?"), bot("Because.")]}
    with pytest.raises(StudioError, match="No column named nope"):
        to_rows(t, Mapping(kind="instruction", prompt="nope", response="a", columns=t.columns))
    with pytest.raises(StudioError, match="choose a column for Answer"):
        to_rows(t, Mapping(kind="instruction", prompt="q", columns=t.columns))


def test_mapping_round_trips_as_a_plain_dict():
    m = detect(table([{"instruction": "a", "output": "b"}]))
    d = m.to_dict()
    assert d["kind"] == "instruction" and d["columns"] == ["instruction", "output"]
    assert Mapping.from_dict(json.loads(json.dumps(d))) == m
    assert m.describe() == "instruction: prompt ← instruction, response ← output"
