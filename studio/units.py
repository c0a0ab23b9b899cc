"""Numbers as a person reads them: durations in their language (one rule, for the server and, through
`templates()`, for the page's ticking clocks), and large counts in short form."""

from __future__ import annotations

from studio.messages import languages, say

_IDS = ("unit.seconds", "unit.min_sec", "unit.minutes", "unit.hours")


def seconds_text(s: float | None, lang: str = "en") -> str:
    """12 s, 4 min 5 s, 25 min, 1.5 h (and the same in the reader's language); '?' when unknown."""
    if s is None:
        return say("unit.unknown", lang)
    s = max(0, int(round(s)))
    if s < 60:
        return say("unit.seconds", lang, n=s)
    if s < 3600:
        m, sec = divmod(s, 60)
        if m < 10 and sec:
            return say("unit.min_sec", lang, m=m, s=sec)
        return say("unit.minutes", lang, m=round(s / 60))
    return say("unit.hours", lang, h=s / 3600)


class Seconds:
    """A duration as a message parameter: shown in whichever language the message is read."""

    __slots__ = ("s",)

    def __init__(self, s: float | None):
        self.s = s

    def text(self, lang: str = "en") -> str:
        return seconds_text(self.s, lang)

    def __str__(self) -> str:
        return self.text()


def templates() -> dict[str, dict[str, str]]:
    """{lang: {"seconds", "min_sec", "minutes", "hours"}}: the catalog's duration templates, for the
    page's JavaScript, which fills the same placeholders."""
    return {lang: {i.split(".", 1)[1]: say(i, lang) for i in _IDS} for lang in languages()}


def count_text(n: float) -> str:
    """A large count in short form: 135M, 1.5B, 12K, 950."""
    n = float(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}".replace(f".0{unit}", unit)
    return f"{int(n)}"
