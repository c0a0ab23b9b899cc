"""Data and model language: when most rows are Chinese and the chosen model's catalog entry does not
list Chinese, say so and name a catalog model that speaks it.

    advice = language_advice(chinese_share(rows), model_name)   # a Msg, or None when all is well

The Data tab shows it under the report and the Model tab shows the same function's result.
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path

from studio.data.rows import Row, texts
from studio.messages import Msg

MOSTLY = 0.5  # share of Chinese rows from which the data counts as Chinese
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile("[A-Za-z]")


def is_chinese(text: str) -> bool:
    """Han characters make at least a third of the letters (Chinese text often holds English terms)."""
    han = len(_HAN.findall(text))
    return han > 0 and 3 * han >= han + len(_LATIN.findall(text))


def chinese_share(rows: list[Row], sample: int = 2000, seed: int = 0) -> float:
    """Share of rows (a sample of them in big files) whose text is mostly Chinese."""
    if not rows:
        return 0.0
    picked = rows if len(rows) <= sample else random.Random(seed).sample(rows, sample)
    return sum(is_chinese("\n".join(texts(r.data))) for r in picked) / len(picked)


_ZH = re.compile(r"(?<![a-z])zh(?![a-z])|chinese|\u4e2d\u6587", re.IGNORECASE)


def speaks_chinese(languages) -> bool:
    """A catalog entry's languages name Chinese: "zh", "zh-CN", "Chinese", or inside a note such as
    "multilingual (zh included)"."""
    return any(_ZH.search(str(x)) for x in languages)


def language_advice(zh_share: float, model_name: str | None) -> Msg | None:
    """A Msg when most rows are Chinese and the model's catalog entry does not list Chinese (a model the
    catalog does not know gets no advice: nothing says what it speaks). Names the catalog model nearest in
    size that lists Chinese; a gated one is named with the Hub login it needs."""
    if zh_share < MOSTLY:
        return None
    from studio.models import catalog

    entry = catalog.find(model_name or "embedded")
    if entry is None or speaks_chinese(entry.languages):
        return None
    fits = [e for e in catalog.load() if speaks_chinese(e.languages) and e.kind == entry.kind
            and not e.needs_remote_code and e.id != "embedded"]
    if not fits:
        return Msg("data.language.model_no_zh", share=f"{100 * zh_share:.0f}%", model=entry.id)
    bigger = [e for e in fits if e.params_b >= entry.params_b]
    best = min(bigger, key=lambda e: e.params_b) if bigger else max(fits, key=lambda e: e.params_b)
    suggestion = Msg("data.language.suggest_gated" if best.gated else "data.language.suggest",
                     model=best.id, size=best.size_label)
    return Msg("data.language.model_no_zh_try", share=f"{100 * zh_share:.0f}%", model=entry.id, suggestion=suggestion)


def data_chinese_share(data: dict) -> float:
    """The share of Chinese rows in the data chosen in the Data tab (ctx.data): the share it recorded, else
    measured on its training file."""
    if data.get("zh_share") is not None:
        return float(data["zh_share"])
    path = Path(str(data.get("train_file") or ""))
    if not path.is_file():
        return 0.0
    return _file_share(str(path), path.stat().st_mtime)


@functools.lru_cache(maxsize=8)
def _file_share(path: str, mtime: float) -> float:
    from studio.data.read import read_file
    from studio.errors import StudioError

    try:
        records = read_file(path).rows
    except StudioError:
        return 0.0
    picked = records if len(records) <= 2000 else random.Random(0).sample(records, 2000)
    return sum(is_chinese("\n".join(_strings(r))) for r in picked) / max(1, len(picked))


def _strings(value) -> list[str]:
    """Every string inside a record, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
