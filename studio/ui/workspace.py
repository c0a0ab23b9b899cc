"""Which browser is asking: a random token the page keeps in a cookie (`studio_ws`, set by HEAD_SCRIPT
before gradio starts, for a year), so every request of that browser names the same workspace
(studio/workspace.py) across reloads, language switches and restarts. The token itself is never a
folder name: the id is a hash of it.
"""

from __future__ import annotations

import hashlib
import re

COOKIE = "studio_ws"

# Runs first in the page (LanguageMiddleware puts it in <head>): a token for this browser if it has none.
HEAD_SCRIPT = (
    "<script>(function(){if(/(?:^|; )" + COOKIE + "=[0-9a-f]{32}/.test(document.cookie))return;"
    "var b=new Uint8Array(16);crypto.getRandomValues(b);"
    "var v=Array.from(b,function(x){return x.toString(16).padStart(2,'0')}).join('');"
    "var s=location.protocol==='https:'?'; SameSite=None; Secure':'; SameSite=Lax';"
    "document.cookie='" + COOKIE + "='+v+'; max-age=31536000; path=/'+s;})();</script>"
)


def token_of(cookie_header: str) -> str | None:
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and re.fullmatch(r"[0-9a-f]{32}", value):
            return value
    return None


def session_of(request) -> str:
    """The workspace id of the browser behind `request`: from its cookie, else gradio's session (a browser
    that refuses cookies keeps its work for as long as the page stays open)."""
    headers = getattr(request, "headers", None)
    token = token_of(headers.get("cookie", "") if headers is not None else "")
    if token:
        return "ws-" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return getattr(request, "session_hash", None) or "local"
