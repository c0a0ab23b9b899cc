"""Unfilled template placeholders: {{name}}, {author}, <NAME>, as identity (self-cognition) sets ship
them. Rows holding one are flagged with what they hold; given a name and an author, those two are filled.

Double braces mark a placeholder whatever the word ({{model_name}}); single braces and angle brackets
only for the words such sets use, so code answers with `{x}` or HTML tags are not taken for one.
"""

from __future__ import annotations

import re

WORDS = ("name", "author", "model", "model_name", "assistant_name", "bot_name", "company", "organization",
         "organisation", "creator", "developer", "team")
_WORDS = "|".join(sorted(WORDS, key=len, reverse=True))
FIND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}"
                  rf"|\{{({_WORDS})\}}"
                  rf"|<({_WORDS.upper()})>|\[({_WORDS.upper()})\]")
_MAYBE = re.compile(r"[{<\[]").search
# What each fill value replaces: the name of the assistant, and who made it.
FILLS = {"name": ("name", "model", "model_name", "assistant_name", "bot_name"),
         "author": ("author", "company", "organization", "organisation", "creator", "developer", "team")}


def found_in(text: str) -> list[str]:
    """The placeholders in a text as written, in order, each once."""
    if not _MAYBE(text):
        return []
    return list(dict.fromkeys(m.group(0) for m in FIND.finditer(text)))


def fill(text: str, name: str = "", author: str = "") -> str:
    """The text with the name and author placeholders filled (others stay as they are)."""
    if not _MAYBE(text) or not (name or author):
        return text
    values = {w: v for key, v in (("name", name), ("author", author)) if v for w in FILLS[key]}

    def repl(m: re.Match) -> str:
        word = next(g for g in m.groups() if g).lower()
        return values.get(word, m.group(0))

    return FIND.sub(repl, text)
