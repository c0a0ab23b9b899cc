"""A push to the Hugging Face Hub: one model repo (private by default), one commit.

Hub tokens: passed in, used for the request, and never stored, logged, returned or put in a message.
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.errors import StudioError
from studio.export.source import Progress, noop
from studio.messages import Msg, say

_OFFLINE = ("ConnectError", "ConnectTimeout", "NetworkError", "OfflineModeIsEnabled", "ProxyError",
            "RemoteProtocolError", "ReadTimeout", "TimeoutException", "gaierror")


def scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def hub_error(e: Exception, repo_id: str, token: str | None) -> StudioError:
    """One plain sentence for a failed push; never the token, never a traceback."""
    name = type(e).__name__
    text = scrub(f"{name}: {e}", token)
    status = getattr(getattr(e, "response", None), "status_code", None)
    if (name in _OFFLINE or isinstance(e, (ConnectionError, TimeoutError))
            or any(m in text for m in ("Name or service not known", "Connection refused", "offline mode"))):
        return StudioError("export.hub.offline")
    if status == 401:
        return StudioError("export.hub.bad_token")
    if status == 403:
        return StudioError("export.hub.forbidden", repo=repo_id)
    if status in (400, 422) or "Invalid repo" in text or "HFValidationError" in name:
        return StudioError("export.hub.bad_name", repo=repo_id)
    return StudioError("export.hub.failed", error=text.splitlines()[0] if text else name)


def _hub_files(folder: Path, extra: dict[str, Path]) -> list[tuple[str, Path]]:
    files = [(str(f.relative_to(folder)), f) for f in sorted(folder.rglob("*")) if f.is_file()]
    for prefix, sub in extra.items():
        if sub.is_dir():
            files += [(f"{prefix}/{f.relative_to(sub)}", f) for f in sorted(sub.rglob("*")) if f.is_file()]
    return files


def push_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool = True,
                extra: dict[str, str | Path] | None = None, progress: Progress | None = None,
                endpoint: str | None = None, commit_message: str | None = None) -> str:
    """Create (or reuse) the model repo `repo_id` and upload `folder` to it in one commit; `extra` maps
    a folder in the repo to a local folder to add beside it (e.g. {"rerun": ".../rerun"}). Private by
    default. The token comes from the argument, else HF_TOKEN (or a `hf auth login`), and goes only
    into the request's Authorization header. Returns the repo's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    from studio.policy import on_space

    progress = progress or noop
    folder = Path(folder)
    repo_id = (repo_id or "").strip()
    if not repo_id:
        raise StudioError("export.no_repo")
    if not folder.is_dir():
        raise StudioError("export.hub.nothing", folder=folder)
    # On a public Space, HF_TOKEN is the Space owner's secret: a visitor must type their own token.
    if on_space() and not (token or "").strip():
        raise StudioError("export.hub.space_token")
    token = (token or "").strip() or get_token()
    if not token:
        raise StudioError("export.no_token")
    # HF_ENDPOINT is read by huggingface_hub once at import; read it again so a mirror set later applies.
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    error = None
    try:
        visibility = Msg("export.private.yes" if private else "export.private.no")
        progress(0.05, Msg("export.progress.create_repo", visibility=visibility, repo=repo_id))
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        repo_id = url.repo_id or repo_id  # "name" alone gets the account's namespace
        files = _hub_files(folder, {k: Path(v) for k, v in (extra or {}).items()})
        size = sum(f.stat().st_size for _, f in files)
        progress(0.2, Msg("export.progress.upload", n=len(files), mb=size / 2**20))
        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in files]
        api.create_commit(repo_id, operations=ops, commit_message=commit_message or say("export.hub.commit"),
                          repo_type="model")
    except Exception as e:  # noqa: BLE001 -- every failure becomes one sentence, scrubbed of the token
        error = hub_error(e, repo_id, token)
    if error is not None:
        # Raised outside the except block: the HTTP error (whose request holds the Authorization
        # header) is then not even attached as __context__ for a logger to print.
        raise error
    progress(1.0, Msg("export.progress.pushed"))
    return f"{api.endpoint.rstrip('/')}/{repo_id}"
