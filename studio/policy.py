"""What this deployment allows: the limits of a public Space (safe mode) and whether a model may run code
shipped with it (remote-code trust). Read from the environment at every call, never cached.

A Space sets SPACE_ID (and SPACE_AUTHOR_NAME, SPACE_HOST...) in the app's environment. There, anyone
on the internet drives the app on a free 2-core CPU machine with 16 GB, so the app runs in safe mode:
one training job at a time, capped data and training time (sized so the embedded 135M model finishes
a LoRA run in minutes, see FACTS.md: 240 short rows take 2 minutes), no model code from the Hub, and
no browsing of the server's files. The Space owner can change the caps with Space variables
(STUDIO_MAX_ROWS, STUDIO_MAX_TRAIN_MINUTES, STUDIO_MAX_UPLOAD_MB, STUDIO_MAX_MODEL_PARAMS_B) or turn
safe mode off on a private or GPU Space with STUDIO_SAFE_MODE=0; STUDIO_SAFE_MODE=1 turns it on
anywhere (to try the Space's behaviour locally).

This module sits below everything that asks (studio.paths, studio.space, model loading, the tabs): it
imports nothing of the studio but its errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from studio.errors import StudioError


@dataclass(frozen=True)
class SafeMode:
    """Limits for a public deployment. `enabled=False` (a workstation) means no limits at all."""

    enabled: bool = False
    space_id: str = ""                 # "owner/name" on a Space, else ""
    max_jobs: int = 1                  # training jobs at once (the engine runs one per server anyway)
    max_rows: int = 0                  # training rows used (0 = no cap)
    max_train_minutes: float = 0       # wall-clock cap on one training run (0 = no cap)
    max_upload_mb: int = 0             # size of one uploaded file (0 = no cap)
    max_length: int = 0                # tokens per row (0 = no cap)
    max_model_params_b: float = 0      # largest base model, billions of parameters (0 = no cap)
    allow_server_paths: bool = True    # may a person type a folder or file path on the server?
    # May a model run code shipped with it (trust_remote_code)? Off unless whoever runs the server said
    # so (`studio ui --allow-remote-code` or STUDIO_ALLOW_REMOTE_CODE=1), and never on a Space.
    allow_remote_code: bool = False

    @property
    def max_train_seconds(self) -> float:
        return self.max_train_minutes * 60


# A free CPU Space: 2 cores, 16 GB. 2,000 short rows of LoRA on the 135M model is about 15 minutes there.
SPACE_LIMITS = SafeMode(enabled=True, max_jobs=1, max_rows=2000, max_train_minutes=20, max_upload_mb=20,
                        max_length=512, max_model_params_b=0.5, allow_server_paths=False, allow_remote_code=False)


def on_space(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("SPACE_ID"))


def _flag(value: str | None) -> bool | None:
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


def safe_mode(env: Mapping[str, str] | None = None) -> SafeMode:
    """The limits in force for this process, from the environment (read at call time, not import)."""
    env = os.environ if env is None else env
    forced = _flag(env.get("STUDIO_SAFE_MODE"))
    enabled = forced if forced is not None else on_space(env)
    if not enabled:
        # A private Space with STUDIO_SAFE_MODE=0 still runs no model code: its visitors are not its owner.
        remote = bool(_flag(env.get("STUDIO_ALLOW_REMOTE_CODE"))) and not on_space(env)
        return SafeMode(space_id=env.get("SPACE_ID", ""), allow_remote_code=remote)
    mode = replace(SPACE_LIMITS, space_id=env.get("SPACE_ID", ""))
    overrides = {}
    for field_name, var, cast in (("max_rows", "STUDIO_MAX_ROWS", int),
                                  ("max_train_minutes", "STUDIO_MAX_TRAIN_MINUTES", float),
                                  ("max_upload_mb", "STUDIO_MAX_UPLOAD_MB", int),
                                  ("max_model_params_b", "STUDIO_MAX_MODEL_PARAMS_B", float)):
        if env.get(var, "").strip():
            try:
                overrides[field_name] = cast(env[var])
            except ValueError:
                raise StudioError("space.variable_not_number", var=var, value=repr(env[var])) from None
    return replace(mode, **overrides)


# ---- remote code ---------------------------------------------------------------------------------

def remote_code_refusal(name: str, mode: SafeMode | None = None) -> StudioError:
    """The sentence for a model that would run code shipped with it, when this server does not allow it."""
    mode = safe_mode() if mode is None else mode
    if mode.enabled or on_space():
        return StudioError("space.remote_code_never", name=name)
    return StudioError("space.remote_code_refused", name=name)


def check_remote_code(cfg, mode: SafeMode | None = None) -> None:
    """For a config that came from the browser (a RunConfig): refuse one that asks to run model code
    unless the server allows it. (A config file given to `studio train` is the person at the keyboard
    asking: not checked.)"""
    mode = safe_mode() if mode is None else mode
    if cfg.model.trust_remote_code and not mode.allow_remote_code:
        raise remote_code_refusal(cfg.model.name, mode)
