"""The page's language: the browser's by default, switchable in the page.

Labels are translated in the browser by gradio's i18n, which reads `navigator.language` once, when the
page starts; messages written by handlers follow `lang_of(request)` on the server. A switch in the header
stores the choice in a cookie (`studio_lang`) and reloads the page; a small script, placed first in the
page's <head> by `LanguageMiddleware` (before gradio's own script runs), makes `navigator.language` say
the chosen language, and `lang_of` reads the same cookie. One choice, both sides.
"""

from __future__ import annotations

from studio import messages

COOKIE = "studio_lang"


def choices() -> list[tuple[str, str]]:
    """The switch's options: automatic, then every language the catalog has, each named in itself."""
    auto = " · ".join(dict.fromkeys(messages.say("language.auto", lang) for lang in messages.languages()))
    return [(auto, "auto")] + [(messages.say("language.name", lang), lang) for lang in messages.languages()]


def choices_values() -> list[str]:
    return [value for _, value in choices()]


# Runs before gradio's script: makes the browser's language the chosen one.
HEAD_SCRIPT = (
    "<script>(function(){var m=document.cookie.match(/(?:^|; )" + COOKIE + "=([a-z]{2,3})/);if(!m)return;"
    "var v=m[1]==='zh'?'zh-CN':m[1]==='en'?'en-US':m[1];try{"
    "Object.defineProperty(Navigator.prototype,'language',{get:function(){return v},configurable:true});"
    "Object.defineProperty(Navigator.prototype,'languages',{get:function(){return [v]},configurable:true});"
    "}catch(e){}})();</script>"
)

# The switch's browser-side action: remember the choice for a year and reload in that language.
SWITCH_JS = (
    "(choice) => { const secure = location.protocol === 'https:' ? '; SameSite=None; Secure' : '; SameSite=Lax';"
    " document.cookie = '" + COOKIE + "=' + (choice === 'auto' ? '; max-age=0' : choice + '; max-age=31536000')"
    " + '; path=/' + secure; setTimeout(() => location.reload(), 50); return choice; }"
)


def cookie_choice(cookie_header: str) -> str:
    """A language of the catalog, or 'auto', from a Cookie header."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value in messages.languages():
            return value
    return "auto"


class LanguageMiddleware:
    """ASGI middleware: puts HEAD_SCRIPT (and the workspace cookie's script) first in the <head> of the app's
    page (GET /)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") not in ("/", ""):
            return await self.app(scope, receive, send)
        held: dict = {}
        body = bytearray()

        async def capture(message):
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                html = headers.get(b"content-type", b"").startswith(b"text/html") and b"content-encoding" not in headers
                if not html:
                    held["passthrough"] = True
                    return await send(message)
                held["start"] = message
                return None
            if held.get("passthrough"):
                return await send(message)
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return None
            from studio.ui.workspace import HEAD_SCRIPT as WORKSPACE_SCRIPT

            page = bytes(body).replace(b"<head>", b"<head>" + (HEAD_SCRIPT + WORKSPACE_SCRIPT).encode(), 1)
            start = held["start"]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, capture)
