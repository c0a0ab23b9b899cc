"""No handler can break the page: an exception in any event handler becomes a message in the page (a
gradio error toast, in the reader's language when the handler was given the request, else in both),
its traceback goes to the server's log, and the app goes on working.

`guard_handlers(demo)` wraps every handler of a built app once; handlers stay plain functions. The
worker threads that run them are lowered in priority like the event loop (see studio/ui/priority.py).
It also answers a refused request (`refuse_bad_inputs`): inputs gradio stops before any handler runs
(a server file that was never uploaded, a value the page never offered) get a plain refusal.
"""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from studio.errors import StudioError, from_os_error
from studio.ui.i18n import LANGS, lang_of, text
from studio.ui.priority import lower_this_thread

log = logging.getLogger("studio.ui")



def _message(e: BaseException, args) -> gr.Error:
    request = next((a for a in args if isinstance(a, gr.Request)), None)
    langs = [lang_of(request)] if request is not None else list(LANGS)
    plain = e if isinstance(e, StudioError) else from_os_error(e)
    if plain is not None:
        msg = " / ".join(plain.text(lang) for lang in langs)
    else:
        log.exception("handler failed")
        first = (str(e).splitlines() or [""])[0][:200]
        what = f"{type(e).__name__}: {first}" if first else type(e).__name__
        msg = " / ".join(text("app.unexpected", lang, what=what) for lang in langs)
    return gr.Error(msg, duration=12)


def guarded(fn):
    """fn, with any exception but gradio's own errors turned into a message in the page."""
    if getattr(fn, "_studio_guarded", False):
        return fn
    passthrough = (gr.Error,)

    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except passthrough:
                raise
            except Exception as e:
                raise _message(e, args) from e
    elif inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            lower_this_thread()
            try:
                yield from fn(*args, **kwargs)
            except passthrough:
                raise
            except Exception as e:
                raise _message(e, args) from e
    elif inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except passthrough:
                raise
            except Exception as e:
                raise _message(e, args) from e
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            lower_this_thread()  # gradio runs plain handlers in worker threads: they too yield to training
            try:
                return fn(*args, **kwargs)
            except passthrough:
                raise
            except Exception as e:
                raise _message(e, args) from e
    wrapper._studio_guarded = True
    return wrapper


def guard_handlers(demo: gr.Blocks) -> gr.Blocks:
    fns = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    for block_fn in fns:
        if block_fn.fn is not None:
            block_fn.fn = guarded(block_fn.fn)
    return refuse_bad_inputs(demo)


class _Refused(Exception):
    """Gradio refused a handler's inputs while preparing them: `key` is the catalog id of the answer."""

    def __init__(self, key: str, detail: str):
        super().__init__(detail)
        self.key = key


def refuse_bad_inputs(demo: gr.Blocks) -> gr.Blocks:
    """A request whose inputs gradio refuses before the handler runs gets one plain sentence in the page's
    language, and the log one line, not a traceback: a file input (the Data and Train tabs' uploads) naming
    a server path no one uploaded (/etc/passwd, a path with ..) is InvalidPathError; a value the page never
    offered (a run, sample or preset path sent to a Compare, Export or Data dropdown) is gradio's own error,
    whose English text would list the server's paths. Only the inputs are judged: a file a handler returns
    that gradio will not serve stays a bug, with its traceback. Gradio offers no hook for this, so the two
    methods are wrapped on this one app."""
    from gradio.exceptions import InvalidPathError

    if getattr(demo, "_studio_refuses_inputs", False):
        return demo
    preprocess, process = demo.preprocess_data, demo.process_api

    @functools.wraps(preprocess)
    async def preprocess_data(*args, **kwargs):
        try:
            return await preprocess(*args, **kwargs)
        except InvalidPathError as e:
            raise _Refused("paths.not_uploaded", str(e)) from None
        except Exception as e:  # noqa: BLE001 - whatever a component refuses, the answer is the same
            raise _Refused("app.refused_input", f"{type(e).__name__}: {e}") from None

    @functools.wraps(process)
    async def process_api(*args, **kwargs):
        try:
            return await process(*args, **kwargs)
        except _Refused as e:
            request = kwargs.get("request")
            request = request[0] if isinstance(request, list) and request else request
            name = getattr(kwargs.get("block_fn"), "name", "?")
            log.warning("refused a request to %s: %s", name, (str(e).splitlines() or [""])[0][:300])
            raise gr.Error(text(e.key, lang_of(request)), duration=12, print_exception=False) from None

    demo.preprocess_data, demo.process_api = preprocess_data, process_api
    demo._studio_refuses_inputs = True
    return demo
