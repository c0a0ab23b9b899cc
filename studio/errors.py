"""One exception for problems the user can fix, and the sentences the engine hands to whoever shows them.

Every sentence comes from the message catalog (studio/messages.py, studio/locales/<lang>.yaml):

    raise StudioError("data.error.no_file", path=p)   # CLI: one English line on stderr; UI: the reader's language
    e.text("zh"); e.message.to_dict()                  # what a log or summary.json keeps

Anything that is not a StudioError is a bug.
"""

from __future__ import annotations

from typing import Any

from studio.messages import Msg, join, say


class _Pair:
    """TRANSITION ONLY: an (English, Chinese) pair written inline, from before the catalog. Being removed;
    tests/test_messages.py counts what is left."""

    def __init__(self, en: str, zh: str = ""):
        self.key, self.params, self.en, self.zh = "", {}, en, zh or en

    def text(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en

    def to_dict(self) -> dict:
        return {"en": self.en, "zh": self.zh}


class StudioError(Exception):
    def __init__(self, key, zh: str | None = None, **params: Any):
        if isinstance(key, (Msg, _Pair)):
            self.message = key
        elif zh is None and not params and not _is_key(key):
            self.message = _Pair(key)
        elif zh is not None:
            self.message = _Pair(key, zh)
        else:
            self.message = Msg(key, **params)
        super().__init__(self.message.text("en"))

    def text(self, lang: str = "en") -> str:
        return self.message.text(lang)

    @property
    def key(self) -> str:
        return self.message.key

    @property
    def en(self) -> str:
        return self.text("en")

    @property
    def zh(self) -> str:
        return self.text("zh")


def _is_key(s: str) -> bool:
    from studio.messages import has

    return has(s)


class Sentence(str):
    """TRANSITION ONLY (see _Pair): a str in one language that carries both."""

    def __new__(cls, en: str, zh: str = "", lang: str = "en"):
        zh = zh or en
        self = super().__new__(cls, zh if lang == "zh" else en)
        self.en, self.zh = en, zh
        return self

    def text(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en

    def __reduce__(self):
        return (Sentence, (self.en, self.zh, "zh" if str.__str__(self) == self.zh != self.en else "en"))


def error_text(e: BaseException, lang: str = "en") -> str:
    """The sentence to show for any exception: a StudioError in the reader's language, else its str."""
    return e.text(lang) if isinstance(e, StudioError) else str(e)


def joined(sentences, lang: str = "en") -> str:
    """Sentences (messages, errors or plain strings) as one paragraph in `lang`."""
    return join(sentences, lang)


def from_os_error(e: BaseException) -> StudioError | None:
    """A full disk or a folder the app may not write to, as a sentence; None for other errors."""
    import errno

    if not isinstance(e, OSError):
        return None
    where = e.filename or ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StudioError("error.disk_full_at", where=where) if where else StudioError("error.disk_full")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StudioError("error.not_writable_at", where=where) if where else StudioError("error.not_writable")
    return None


__all__ = ["StudioError", "Sentence", "Msg", "say", "error_text", "joined", "from_os_error"]
