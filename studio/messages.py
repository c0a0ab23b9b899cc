"""Every sentence a person reads, by id, from one catalog: `studio/locales/<lang>.yaml`, one file per
language, flat `id: text` pairs with `{name}` placeholders (Python format syntax, so `{gib:.1f}` works).

    say("data.error.no_file", "zh", path=p)        # the text now
    m = Msg("data.error.no_file", path=p)          # the text later, in whichever language reads it
    m.text("zh"); m.to_dict()                      # {"id": ..., "params": {...}}: what logs and summaries keep
    raise StudioError("data.error.no_file", path=p)

Parameters may be messages themselves (translated with the sentence) or lists (joined with the
language's own separator). English is the source: a language file that lacks an id falls back to it,
and tests/test_messages.py fails when one does. Adding a language is adding one file whose
`language.name` says what it is called; the page offers it at once.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterable

import yaml

LOCALES = Path(__file__).parent / "locales"
SOURCE = "en"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def catalog(lang: str = SOURCE) -> dict[str, str]:
    """The id -> text table of one language ({} for a language that has no file)."""
    path = LOCALES / f"{lang}.yaml"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=_Loader) or {}
    return {str(k): str(v) for k, v in data.items()}


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages that have a file, English first."""
    others = sorted(p.stem for p in LOCALES.glob("*.yaml") if p.stem != SOURCE)
    return (SOURCE, *others)


def normalize_lang(lang: str | None) -> str:
    """'zh-CN' -> 'zh'; a language with no file -> English."""
    code = (lang or SOURCE).split("-")[0].split("_")[0].lower()
    return code if code in languages() else SOURCE


def has(key: str) -> bool:
    return key in catalog(SOURCE)


def say(key: str, lang: str = SOURCE, **params: Any) -> str:
    """The text of `key` in `lang`, with its parameters filled in (each translated first)."""
    template = catalog(lang).get(key)
    if template is None:
        template = catalog(SOURCE).get(key)
        if template is None:
            raise KeyError(f"message '{key}' is not in studio/locales/{SOURCE}.yaml")
    if not params:
        return template
    return template.format(**{k: localize(v, lang) for k, v in params.items()})


def localize(value: Any, lang: str = SOURCE) -> Any:
    """A parameter as the language shows it: messages translated, lists joined, the rest as is."""
    if isinstance(value, Msg) or callable(getattr(value, "text", None)):
        return value.text(lang)
    if isinstance(value, (list, tuple)):
        return say("list.separator", lang).join(str(localize(v, lang)) for v in value)
    return value


def join(sentences: Iterable[Any], lang: str = SOURCE) -> str:
    """Sentences as one paragraph: a space between them in English, nothing in Chinese (the catalog says)."""
    return say("sentence.separator", lang).join(str(localize(s, lang)) for s in sentences if s)


class Msg:
    """A message by id and parameters: translated when it is shown, stored as `to_dict()`."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, **params: Any):
        if not has(key):
            raise KeyError(f"message '{key}' is not in studio/locales/{SOURCE}.yaml")
        self.key = key
        self.params = params

    def text(self, lang: str = SOURCE) -> str:
        return say(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.text(SOURCE)

    def __repr__(self) -> str:
        return f"Msg({self.key!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and (self.key, self.params) == (other.key, other.params)

    def __hash__(self) -> int:
        return hash(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.key, "params": {k: _plain(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Msg":
        return cls(d["id"], **{k: _revive(v) for k, v in (d.get("params") or {}).items()})


class Paragraph:
    """Sentences shown together (a Msg parameter): joined with the language's sentence separator."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Any]):
        self.items = list(items)

    def text(self, lang: str = SOURCE) -> str:
        return join(self.items, lang)

    def __str__(self) -> str:
        return self.text(SOURCE)


def _plain(v: Any) -> Any:
    if isinstance(v, Msg):
        return v.to_dict()
    if isinstance(v, Paragraph):
        return {"paragraph": [_plain(x) for x in v.items]}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _revive(v: Any) -> Any:
    if isinstance(v, dict) and "id" in v and has(str(v["id"])):
        return Msg.from_dict(v)
    if isinstance(v, dict) and "paragraph" in v:
        return Paragraph(_revive(x) for x in v["paragraph"])
    if isinstance(v, list):
        return [_revive(x) for x in v]
    return v


def text_of(value: Any, lang: str = SOURCE) -> str:
    """Whatever a log or summary kept (a Msg, its dict, a StudioError, a plain string) as text in `lang`."""
    if isinstance(value, dict) and "id" in value:
        try:
            return Msg.from_dict(value).text(lang)
        except KeyError:
            return str(value.get("id"))
    return str(localize(value, lang))
