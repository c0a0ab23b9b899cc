"""From a data file to the rows a trainer takes.

Training reads canonical rows (TRL's standard shapes: {"messages"}, {"prompt","chosen","rejected"},
{"text"}). A file that is not canonical yet (an Alpaca JSONL, a spreadsheet) goes through the data
studio's readers and format detection first, so the CLI accepts what the Data tab accepts.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from studio.errors import StudioError
from studio.messages import Msg

STAGE_FORMAT = {"sft": "sft", "cpt": "text", "dpo": "preference"}


def row_format(row: dict) -> str | None:
    if isinstance(row.get("messages"), list):
        return "sft"
    if {"prompt", "chosen", "rejected"} <= set(row):
        return "preference"
    if isinstance(row.get("text"), str):
        return "text"
    return None


def _read_canonical_jsonl(path: Path) -> list[dict] | None:
    """Rows if the file is JSONL and every row is already canonical, else None."""
    if path.suffix.lower() not in (".jsonl", ".json"):
        return None
    rows = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for line in f:
                if line.strip():
                    rows.append(json.loads(line))
    except (ValueError, UnicodeDecodeError):
        return None
    if rows and all(isinstance(r, dict) and row_format(r) for r in rows):
        return rows
    return None


def load_rows(path: str | Path) -> tuple[list[dict], str]:
    """(canonical rows, format) from any data file the data studio can read."""
    path = Path(path)
    if not path.is_file():
        raise StudioError("data.file.missing", path=str(path))
    rows = _read_canonical_jsonl(path)
    if rows is None:
        from studio.data import pipeline  # readers + detection, shared with the Data tab

        table, mapping = pipeline.load(path)
        rows = [r.data for r in pipeline.convert(table, mapping).rows]
    if not rows:
        raise StudioError("data.file.no_rows", name=path.name)
    formats = {row_format(r) for r in rows}
    if len(formats) != 1 or None in formats:
        raise StudioError("data.file.mixed_shapes", name=path.name, shapes=sorted(map(str, formats)))
    return rows, formats.pop()


def check_stage(fmt: str, stage: str, name: str) -> None:
    want = STAGE_FORMAT[stage]
    if fmt == want:
        return
    if stage == "cpt" and fmt == "sft":
        return  # conversations can be trained on as plain text too
    raise StudioError("data.stage_mismatch", stage=stage.upper(), want=Msg(f"data.shape.{want}"), name=name,
                      have=Msg(f"data.shape.{fmt}"))


def split(rows: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded train/validation split; at least one validation row when share > 0 and there are 2+ rows."""
    if share <= 0 or len(rows) < 2:
        return list(rows), []
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_eval = min(len(rows) - 1, max(1, round(len(rows) * share)))
    eval_idx = set(idx[:n_eval])
    return [r for i, r in enumerate(rows) if i not in eval_idx], [r for i, r in enumerate(rows) if i in eval_idx]


# ---- rows -> trainer datasets -------------------------------------------------------------------

def sft_encode(rows: list[dict], tok, max_length: int) -> tuple[list[dict], dict[str, int]]:
    """(rows tokenized with an assistant mask and cut at max_length, {"dropped", "truncated"}): rows whose
    answer the cut removes entirely are dropped (a prompt filling the whole window teaches nothing), rows
    that lose the end of an answer are kept, truncated. Both are counted so the job's log can say so (the
    template check warns about them before training; this is what training really does)."""
    from studio.models.chat import tokenize_conversation

    encoded, counts = [], {"dropped": 0, "truncated": 0}
    for r in rows:
        e = tokenize_conversation(tok, r["messages"], None)
        mask = e["assistant_masks"]
        kept = mask[:max_length] if max_length else mask
        if not any(kept):
            counts["dropped"] += any(mask)  # a row with no answer at all was never cut
            continue
        if len(kept) < len(mask):
            counts["truncated"] += any(mask[len(kept):])  # what is cut may be only the template's last tokens
            e = {"input_ids": e["input_ids"][:max_length], "assistant_masks": kept}
        encoded.append(e)
    return encoded, counts


def cut_note(counts: dict[str, int], max_length: int) -> Msg | None:
    """One log line about the rows the sequence length cut, or None when it cut none."""
    if not counts["dropped"] and not counts["truncated"]:
        return None
    return Msg("data.cut_note", max_length=max_length, dropped=counts["dropped"], truncated=counts["truncated"])


def sft_dataset(rows: list[dict], tok, max_length: int, say: Callable[[Msg], None] | None = None):
    """Pre-tokenized rows with an assistant mask (loss on answers only); TRL builds the labels. Rows the
    sequence length cuts are counted and told to `say` (the job's log)."""
    from datasets import Dataset

    encoded, counts = sft_encode(rows, tok, max_length)
    note = cut_note(counts, max_length)
    if note and say:
        say(note)
    if not encoded:
        raise StudioError("data.all_cut")
    return Dataset.from_list(encoded)


def text_dataset(rows: list[dict], tok):
    """Plain text for CPT: each document ends with EOS so packed blocks keep document boundaries visible."""
    from datasets import Dataset

    from studio.models.chat import ensure_chat_template

    texts = []
    for r in rows:
        if "text" in r:
            texts.append(r["text"])
        else:  # a conversation used as plain text
            ensure_chat_template(tok)
            texts.append(tok.apply_chat_template(r["messages"], tokenize=False))
    eos = tok.eos_token or ""
    return Dataset.from_list([{"text": t if t.endswith(eos) else t + eos} for t in texts])


def preference_dataset(rows: list[dict]):
    """TRL's conversational preference shape, so DPOTrainer renders the model's chat template."""
    from datasets import Dataset

    out = []
    for r in rows:
        prompt = r["prompt"]
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        if r.get("system") and prompt and prompt[0].get("role") != "system":
            prompt = [{"role": "system", "content": r["system"]}] + prompt
        out.append({"prompt": prompt,
                    "chosen": [{"role": "assistant", "content": str(r["chosen"])}],
                    "rejected": [{"role": "assistant", "content": str(r["rejected"])}]})
    return Dataset.from_list(out)
