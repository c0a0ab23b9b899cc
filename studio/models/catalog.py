"""The model catalog (presets/models.yaml) as dataclasses: lookup by id, search, and dims for the estimator.

    from studio.models import catalog
    entry = catalog.get("qwen2.5-7b-instruct")     # CatalogEntry; StudioError for an unknown id
    catalog.search("chinese 7b")                   # entries whose id, hub id, languages or notes match every word
    catalog.resolve_dims("qwen2.5-7b-instruct")    # ModelDims from a catalog id, a local folder or a Hub id
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio.errors import StudioError
from studio.models.dims import ModelDims, dims_from_config
from studio.paths import PRESETS_DIR

CATALOG_PATH = PRESETS_DIR / "models.yaml"
_QKV_BIAS_TYPES = ("qwen2", "qwen", "chatglm")


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    hub_id: str
    params_b: float  # stated size, billions of parameters
    kind: str  # "instruct" | "base"
    languages: tuple[str, ...]
    licence: str
    needs_remote_code: bool
    notes: str
    notes_zh: str
    dims: ModelDims
    kind_note: str = ""
    kind_note_zh: str = ""

    @property
    def size_label(self) -> str:
        b = self.params_b
        return f"{b * 1000:.0f}M" if b < 1 else f"{b:g}B"

    def label(self, lang: str = "en") -> str:
        """One line for a dropdown: id · size · languages · licence."""
        langs = ", ".join(self.languages)
        kind = ({"instruct": "对话", "base": "基座"} if lang == "zh" else {"instruct": "instruct", "base": "base"})[self.kind]
        return f"{self.id} · {self.size_label} · {kind} · {langs} · {self.licence}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["languages"] = list(self.languages)
        d["param_count"] = self.dims.param_count
        return d


def _entry(raw: dict, kind_notes: dict, where: str) -> CatalogEntry:
    need = ("id", "hub_id", "params_b", "kind", "languages", "licence", "needs_remote_code", "notes", "notes_zh", "dims")
    missing = [k for k in need if k not in raw]
    if missing:
        raise StudioError(f"The catalog entry {raw.get('id', where)} lacks {', '.join(missing)}.",
                          f"模型目录中的条目 {raw.get('id', where)} 缺少 {'、'.join(missing)}。")
    if raw["kind"] not in ("instruct", "base"):
        raise StudioError(f"The catalog entry {raw['id']} has kind '{raw['kind']}'; expected instruct or base.",
                          f"模型目录中的条目 {raw['id']} 的类型是“{raw['kind']}”；应为 instruct 或 base。")
    d = dict(raw["dims"])
    d.setdefault("qkv_bias", d.get("model_type", "llama") in _QKV_BIAS_TYPES)
    dims = ModelDims(name=raw["id"], **d)
    kn = kind_notes.get(raw["kind"], {})
    return CatalogEntry(id=str(raw["id"]), hub_id=str(raw["hub_id"]), params_b=float(raw["params_b"]),
                        kind=raw["kind"], languages=tuple(str(x) for x in raw["languages"]),
                        licence=str(raw["licence"]), needs_remote_code=bool(raw["needs_remote_code"]),
                        notes=str(raw["notes"]), notes_zh=str(raw["notes_zh"]), dims=dims,
                        kind_note=kn.get("en", ""), kind_note_zh=kn.get("zh", ""))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[CatalogEntry, ...]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise StudioError(f"The model catalog {path} cannot be read: {str(e).splitlines()[0]}",
                          f"无法读取模型目录 {path}：{str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise StudioError(f"The model catalog {path} must hold a 'models' list.",
                          f"模型目录 {path} 里必须有一个“models”列表。")
    entries = tuple(_entry(m, data.get("kind_notes") or {}, f"#{i}") for i, m in enumerate(data["models"]))
    ids = [e.id for e in entries]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise StudioError(f"The model catalog has duplicate ids: {', '.join(sorted(dup))}.",
                          f"模型目录中有重复的 id：{'、'.join(sorted(dup))}。")
    return entries


def load(path: str | Path | None = None) -> list[CatalogEntry]:
    """Every catalog entry, in file order."""
    return list(_load(str(path or CATALOG_PATH)))


def ids() -> list[str]:
    return [e.id for e in load()]


def find(model_id: str) -> CatalogEntry | None:
    """The entry with this id (or this Hub id, case-insensitive), or None."""
    key = str(model_id).strip().lower()
    for e in load():
        if e.id.lower() == key:
            return e
    for e in load():
        if e.hub_id.lower() == key:
            return e
    return None


def get(model_id: str) -> CatalogEntry:
    e = find(model_id)
    if e is None:
        raise StudioError(f"'{model_id}' is not in the model catalog. Known ids: {', '.join(ids())}.",
                          f"“{model_id}”不在模型目录中。已有的 id：{'、'.join(ids())}。")
    return e


def search(query: str = "", *, kind: str | None = None, language: str | None = None,
           max_params_b: float | None = None) -> list[CatalogEntry]:
    """Entries matching every word of `query` (in id, hub id, languages, licence or notes), smallest first.

    A word matches the start of a token ("7b" finds qwen2.5-7b but not qwen3-1.7b, "qwen" finds qwen2.5-...),
    or, from 4 characters on, anywhere ("instruct", "chinese")."""
    import re

    words = [w.lower() for w in str(query or "").split()]
    out = []
    for e in load():
        hay = " ".join([e.id, e.hub_id, " ".join(e.languages), e.licence, e.notes, e.notes_zh, e.kind,
                        e.size_label]).lower()
        tokens = [t for t in re.split(r"[\s/,;:()·\-_]+", hay) if t]
        if words and not all(any(t.startswith(w) for t in tokens) or (len(w) >= 4 and w in hay) or
                             (not w.isascii() and w in hay) for w in words):
            continue
        if kind and e.kind != kind:
            continue
        if language and not any(language.lower() in lang.lower() for lang in e.languages):
            continue
        if max_params_b is not None and e.params_b > max_params_b:
            continue
        out.append(e)
    return sorted(out, key=lambda e: e.params_b)


def resolve_dims(model: str, *, offline: bool | None = None, revision: str | None = None,
                 token: str | None = None) -> tuple[ModelDims, str]:
    """ModelDims for a catalog id, a local folder holding config.json, or a Hub id (only its config.json is
    fetched). Returns (dims, where they came from)."""
    name = str(model or "").strip()
    if not name:
        raise StudioError("Name a model: a catalog id, a local folder or a Hugging Face Hub id.",
                          "请指定一个模型：目录中的 id、本地文件夹或 Hugging Face Hub id。")
    entry = find(name)
    if entry is not None:
        return entry.dims, f"catalog: {entry.id}"
    p = Path(name).expanduser()
    if p.exists() or name.startswith((".", "/", "~")):
        if not p.is_dir() and p.name != "config.json":
            raise StudioError(f"{p} is not a folder: point to the model folder that holds config.json.",
                              f"{p} 不是文件夹：请指向包含 config.json 的模型文件夹。")
        return dims_from_config(p), f"folder: {p}"
    if name.count("/") != 1:
        raise StudioError(f"'{name}' is neither a catalog id, a local folder, nor a Hub id like owner/model.",
                          f"“{name}”既不是目录中的 id，也不是本地文件夹，也不是 owner/model 这样的 Hub id。")
    return dims_from_config(_fetch_hub_config(name, offline=offline, revision=revision, token=token),
                            name=name), f"hub: {name}"


def _fetch_hub_config(repo_id: str, *, offline: bool | None, revision: str | None, token: str | None) -> dict:
    import json
    import os

    if offline is None:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise StudioError("Fetching a Hub model's config needs the huggingface_hub package.",
                          "获取 Hub 模型的配置需要安装 huggingface_hub 包。") from None
    try:
        path = hf_hub_download(repo_id, "config.json", revision=revision or None, token=token,
                               local_files_only=bool(offline))
    except Exception as e:  # offline, unknown repo, gated repo: one sentence each
        text = f"{type(e).__name__}: {e}"
        if "gated" in text.lower() or "401" in text or "403" in text:
            raise StudioError(f"The Hub model {repo_id} is gated: accept its licence on the Hub and log in.",
                              f"Hub 模型 {repo_id} 需要授权：请在 Hub 上接受它的许可协议并登录。") from None
        if "404" in text or "RepositoryNotFound" in text or "EntryNotFound" in text:
            raise StudioError(f"The Hub has no model {repo_id} with a config.json.",
                              f"Hub 上没有带 config.json 的模型 {repo_id}。") from None
        raise StudioError(f"Cannot fetch {repo_id}'s config.json from the Hub (offline?); "
                          "use a catalog id or a local folder instead.",
                          f"无法从 Hub 获取 {repo_id} 的 config.json（是不是没联网？）；请改用目录中的 id 或本地文件夹。") from None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StudioError(f"The config.json of {repo_id} is not valid JSON.",
                          f"{repo_id} 的 config.json 不是有效的 JSON。") from None
