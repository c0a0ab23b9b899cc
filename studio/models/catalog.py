"""The model catalog (presets/models.yaml) as dataclasses: lookup by id, search, and dims for the estimator.

    from studio.models import catalog
    entry = catalog.get("qwen2.5-7b-instruct")     # CatalogEntry; StudioError for an unknown id
    catalog.search("chinese 7b")                   # entries whose id, hub id, languages or notes match every word
    catalog.resolve_dims("qwen2.5-7b-instruct")    # ModelDims from a catalog id, a local folder or a Hub id
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from studio.errors import StudioError
from studio.messages import languages, say
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
    dims: ModelDims

    def notes(self, lang: str = "en") -> str:
        """One or two sentences for the person choosing (catalog id catalog.notes.<id>)."""
        return say(f"catalog.notes.{self.id}", lang)

    def kind_note(self, lang: str = "en") -> str:
        """What instruct or base means for the data and the chat template (seed 003)."""
        return say(f"catalog.kind_note.{self.kind}", lang)

    @property
    def gated(self) -> bool:
        """The Hub asks for a login and an accepted licence before it hands out the weights."""
        return "gated" in self.licence.lower()

    @property
    def size_label(self) -> str:
        b = self.params_b
        return f"{b * 1000:.0f}M" if b < 1 else f"{b:g}B"

    def label(self, lang: str = "en") -> str:
        """One line for a dropdown: id · size · languages · licence."""
        langs = ", ".join(self.languages)
        return f"{self.id} · {self.size_label} · {say('catalog.kind.' + self.kind, lang)} · {langs} · {self.licence}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["languages"] = list(self.languages)
        d["param_count"] = self.dims.param_count
        return d


def _entry(raw: dict, kind_notes: dict, where: str) -> CatalogEntry:
    need = ("id", "hub_id", "params_b", "kind", "languages", "licence", "needs_remote_code", "dims")
    missing = [k for k in need if k not in raw]
    if missing:
        raise StudioError("catalog.error.catalog_entry_lacks", get=raw.get('id', where), missing=missing)
    if raw["kind"] not in ("instruct", "base"):
        raise StudioError("catalog.error.catalog_entry_has", id=raw['id'], kind=raw['kind'])
    d = dict(raw["dims"])
    d.setdefault("qkv_bias", d.get("model_type", "llama") in _QKV_BIAS_TYPES)
    dims = ModelDims(name=raw["id"], **d)
    return CatalogEntry(id=str(raw["id"]), hub_id=str(raw["hub_id"]), params_b=float(raw["params_b"]),
                        kind=raw["kind"], languages=tuple(str(x) for x in raw["languages"]),
                        licence=str(raw["licence"]), needs_remote_code=bool(raw["needs_remote_code"]),
                        dims=dims)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[CatalogEntry, ...]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise StudioError("catalog.error.model_catalog_cannot", path=path, error=str(e).splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise StudioError("catalog.error.model_catalog_must", path=path)
    entries = tuple(_entry(m, data.get("kind_notes") or {}, f"#{i}") for i, m in enumerate(data["models"]))
    ids = [e.id for e in entries]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise StudioError("catalog.error.model_catalog_has", dup=sorted(dup))
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
        raise StudioError("catalog.error.model_catalog_known", model_id=model_id, value=ids())
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
        hay = " ".join([e.id, e.hub_id, " ".join(e.languages), e.licence, *(e.notes(lang) for lang in languages()),
                        e.kind, e.size_label]).lower()
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
        raise StudioError("catalog.error.name_model_catalog")
    entry = find(name)
    if entry is not None:
        return entry.dims, f"catalog: {entry.id}"
    p = Path(name).expanduser()
    if p.exists() or name.startswith((".", "/", "~")):
        if not p.is_dir() and p.name != "config.json":
            raise StudioError("catalog.error.folder_point_model", p=p)
        return dims_from_config(p), f"folder: {p}"
    if name.count("/") != 1:
        raise StudioError("catalog.error.neither_catalog_id", name=name)
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
        raise StudioError("catalog.error.fetching_hub_model") from None
    try:
        path = hf_hub_download(repo_id, "config.json", revision=revision or None, token=token,
                               local_files_only=bool(offline))
    except Exception as e:  # offline, unknown repo, gated repo: one sentence each
        text = f"{type(e).__name__}: {e}"
        if "gated" in text.lower() or "401" in text or "403" in text:
            raise StudioError("catalog.error.hub_model_gated", repo_id=repo_id) from None
        if "404" in text or "RepositoryNotFound" in text or "EntryNotFound" in text:
            raise StudioError("catalog.error.hub_has_no", repo_id=repo_id) from None
        raise StudioError("catalog.error.cannot_fetch_s", repo_id=repo_id) from None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StudioError("catalog.error.config_json_valid", repo_id=repo_id) from None
