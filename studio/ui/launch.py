"""`studio ui [--host H] [--port P] [--share] [--auth user:pass[,user2:pass2]] [--allow-remote-code]`:
launch the browser app.

Login: with --auth (or STUDIO_AUTH, which keeps the password out of the process list) gradio asks for
a user name and password before it serves the page or answers any API call. Nothing here prints or
logs the password, nor a Hub token from the environment.
"""

from __future__ import annotations

import os
import sys

from studio import policy
from studio.errors import StudioError


def add_arguments(p) -> None:
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--share", action="store_true", help="a public gradio.live link")
    p.add_argument("--auth", default=os.environ.get("STUDIO_AUTH", ""),
                   help="user:password required to open the app; several as user1:pass1,user2:pass2 "
                        "(or the STUDIO_AUTH environment variable, which other users of the machine cannot see)")
    p.add_argument("--allow-remote-code", action="store_true",
                   default=(os.environ.get("STUDIO_ALLOW_REMOTE_CODE", "").strip().lower() in ("1", "true", "yes", "on")),
                   help="let models that ship their own code (trust_remote_code) run it on this server; only for "
                        "models you trust. Never on a public Space. (Or STUDIO_ALLOW_REMOTE_CODE=1.)")


def run(args) -> int:
    launch(host=args.host, port=args.port, share=args.share, auth=args.auth,
           allow_remote_code=args.allow_remote_code)
    return 0


def parse_auth(auth: str | None) -> list[tuple[str, str]]:
    """"user:pass" or "user1:pass1,user2:pass2" -> [(user, password), ...]; "" -> [] (no login). A
    malformed value is an error, not a silently open server."""
    users = []
    for item in (auth or "").split(","):
        if not item.strip():
            continue
        user, sep, password = item.partition(":")
        if not sep or not user.strip() or not password:
            # Never echo the value: it may hold a password.
            raise StudioError("launch.auth_format")
        users.append((user.strip(), password))
    return users


def launch(host: str = "127.0.0.1", port: int = 7860, share: bool = False, auth: str = "",
           allow_remote_code: bool = False, block: bool = True):
    """Build and serve the app. `block=False` returns the running gradio app at once (for tests)."""
    from studio.ui.app import build_app, launch_kwargs

    users = parse_auth(auth)
    if allow_remote_code:
        # safe_mode() reads this at every check (a Space ignores it), so every tab and the training thread agree.
        os.environ["STUDIO_ALLOW_REMOTE_CODE"] = "1"
        if policy.safe_mode().allow_remote_code:
            print("studio ui: models may run code shipped with them on this server (--allow-remote-code).",
                  file=sys.stderr)
        else:
            print("studio ui: --allow-remote-code is ignored on a public Space.", file=sys.stderr)
    is_space = policy.on_space()
    demo = build_app(is_space=is_space)
    kwargs = launch_kwargs() | server_kwargs(users)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block, **kwargs)
    return demo


def server_kwargs(users: list[tuple[str, str]] | None = None) -> dict:
    """The login, a public Space's limits, and the upload cap for `demo.launch()`. Gradio refuses a bigger
    upload itself; the cap is `upload_limit()`, the same bytes the Data tab's hint and reader use."""
    from studio import space
    from studio.data.read import upload_limit

    kwargs = space.launch_kwargs()  # tighter caps on a public Space
    if users:
        kwargs["auth"] = users
    kwargs["max_file_size"] = upload_limit()
    return kwargs
