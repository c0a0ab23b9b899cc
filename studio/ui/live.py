"""How every open page follows the live run: a cheap key at LIVE_ROUTE, answered before gradio's routing,
and a poller in the page that fires the Train tab's update event when the key moved. What the key is and
what a session must redraw are decided in studio.engine.live; this only carries them to the browser.
"""

from __future__ import annotations

import json

from studio import units
from studio.engine.live import live_key

LIVE_ROUTE = "/studio/live"


# The page's poller (runs in the browser, inside the progress bar's component): every second it reads
# the live key; when the key changed it fires the component's click event (the tab's update: progress,
# curves, health, log), and in between it moves the elapsed and ETA clocks on (the same rule as
# studio.units.seconds_text, with the catalog's words).
POLLER_JS = """
const root = ((window.gradio_config && window.gradio_config.root) || '').replace(/\\/$/, '');
const WORDS = """ + json.dumps(units.templates(), ensure_ascii=False) + """;
let last = null;
function fill(t, v) {
  return t.replace(/\\{(\\w+)(:\\.(\\d)f)?\\}/g, (_, k, f, d) => f ? Number(v[k]).toFixed(Number(d)) : String(v[k]));
}
function human(s, lang) {
  const w = WORDS[lang] || WORDS.en;
  s = Math.max(0, Math.round(s));
  if (s < 60) return fill(w.seconds, {n: s});
  if (s < 3600) {
    const m = Math.floor(s / 60), sec = s % 60;
    if (m < 10 && sec) return fill(w.min_sec, {m: m, s: sec});
    return fill(w.minutes, {m: Math.round(s / 60)});
  }
  return fill(w.hours, {h: s / 3600});
}
function clocks() {
  element.querySelectorAll('.tp-clock').forEach(el => {
    if (!el.dataset.at) el.dataset.at = String(Date.now());
    const dt = (Date.now() - Number(el.dataset.at)) / 1000;
    el.textContent = human(Number(el.dataset.s) + (el.dataset.dir === 'up' ? dt : -dt), el.dataset.lang);
  });
}
async function look() {
  try {
    const r = await fetch(root + '""" + LIVE_ROUTE + """', {cache: 'no-store', credentials: 'same-origin'});
    if (r.ok) {
      const j = await r.json();
      if (j.key !== last) { last = j.key; trigger('click'); }
    }
  } catch (e) {}
  clocks();
  setTimeout(look, 1000);
}
look();
"""


class LiveKeyMiddleware:
    """ASGI middleware that answers GET LIVE_ROUTE itself, before the app's routing: gradio registers
    a hundred routes, and matching a request against them cost the server more than the answer. Every
    open page asks once a second, so this is the server's most frequent request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").endswith(LIVE_ROUTE):  # a root path may precede it
            return await self.app(scope, receive, send)
        body = json.dumps({"key": live_key()}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
