"""One exception for problems the user can fix, and the sentences the engine hands to whoever shows them.

Every sentence comes from the message catalog (studio/messages.py, studio/locales/<lang>.yaml):

    raise StudioError("data.error.no_file", path=p)   # CLI: one English line on stderr; UI: the reader's language
    e.text("zh"); e.message.to_dict()                  # what a log or summary.json keeps

Anything that is not a StudioError is a bug.
"""

from __future__ import annotations

from typing import Any

from studio.messages import Msg, join, say


class StudioError(Exception):
    def __init__(self, key: str | Msg, **params: Any):
        """`key`: a catalog id (with its parameters) or a message already made (anything with .text(lang))."""
        self.message = Msg(key, **params) if isinstance(key, str) else key
        super().__init__(self.message.text("en"))

    def text(self, lang: str = "en") -> str:
        return self.message.text(lang)

    @property
    def key(self) -> str:
        return self.message.key

    @property
    def en(self) -> str:
        return self.text("en")


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


__all__ = ["StudioError", "Msg", "say", "error_text", "joined", "from_os_error"]
