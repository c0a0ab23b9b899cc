"""At training time the sequence length cuts what the template check warned about: rows whose answer is cut
off entirely are left out, rows that lose the end of an answer are truncated, and both are counted for the
job's log (studio/engine/datasets.py)."""

from pathlib import Path

import pytest

from studio.data.rows import make_row
from studio.data.template_check import check_template
from studio.engine import datasets

TINY = Path(__file__).parent / "fixtures" / "data" / "tiny_tokenizer"


@pytest.fixture(scope="module")
def tiny():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY)


def conv(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_cut_rows_are_counted_and_match_the_template_check(tiny):
    rows = [conv("q", "w " * 10), conv("w " * 20, "short"), conv("q", "fits"), conv("q", "w " * 6)]
    encoded, counts = datasets.sft_encode(rows, tiny, 12)
    assert counts == {"dropped": 1, "truncated": 2}
    assert len(encoded) == 3 and all(len(e["input_ids"]) <= 12 for e in encoded)
    check = check_template([make_row(r, i) for i, r in enumerate(rows, 1)], tiny, 12).counts()
    assert (check["cut_entirely"], check["cut_partly"]) == (counts["dropped"], counts["truncated"])
    assert datasets.sft_encode(rows, tiny, 4096)[1] == {"dropped": 0, "truncated": 0}


def test_the_job_log_hears_about_cut_rows(tiny):
    notes = []
    datasets.sft_dataset([conv("q", "w " * 10), conv("w " * 20, "short"), conv("q", "fits")], tiny, 12, say=notes.append)
    assert len(notes) == 1 and notes[0].text("en").startswith("Sequence length 12: 1 rows left out")
    assert "1 rows truncated" in notes[0].text("en") and "1 行被截断" in notes[0].text("zh")
    quiet = []
    datasets.sft_dataset([conv("q", "fits")], tiny, 12, say=quiet.append)
    assert quiet == []  # nothing cut, nothing said
    with pytest.raises(Exception, match="Every row's answer is cut off"):
        datasets.sft_dataset([conv("w " * 20, "short")], tiny, 12)
