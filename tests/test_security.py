"""Security (issue 8, section 5), each point tried: no model code unless the server allows it, files
written per browser session, paths confined on a Space, Hub tokens that never reach disk or logs,
optional login, and no pickle loading. Tiny models only: seconds each."""

from __future__ import annotations

import base64
import builtins
import json
import logging
import pickle
import re
import socket
import tempfile
from pathlib import Path

import pytest

from studio import policy
from studio import space
from studio.config import RunConfig
from studio.errors import StudioError
from studio.paths import REPO_ROOT, confine, keep_upload, session_dir
from studio.policy import SPACE_LIMITS, SafeMode, safe_mode


def _tiny_args(cfg: RunConfig) -> RunConfig:
    t = cfg.training
    t.max_steps, t.epochs, t.batch_size, t.max_length, t.warmup_ratio = 2, 1, 4, 32, 0.0
    cfg.data.eval_share = 0.0
    cfg.method.lora_rank, cfg.method.lora_alpha = 4, 8
    return cfg


def _rows(path: Path, n: int = 8) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]}
            for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---- 1. trust_remote_code off -------------------------------------------------------------------------

def _remote_code_model(folder: Path, marker: Path) -> Path:
    """A model folder whose config maps its classes to code shipped beside it; that code, if it ever
    ran, would create `marker`."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "studio-evil", "architectures": ["EvilForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM",
                     "AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]},
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "vocab_size": 400}), encoding="utf-8")
    code = f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import PretrainedConfig\n" \
           "class EvilConfig(PretrainedConfig):\n    model_type = 'studio-evil'\n"
    (folder / "configuration_evil.py").write_text(code, encoding="utf-8")
    for name in ("modeling_evil.py", "tokenization_evil.py"):
        (folder / name).write_text(code, encoding="utf-8")
    return folder


def test_remote_code_needs_the_server_switch_and_never_runs_on_a_space():
    assert safe_mode({}).allow_remote_code is False and SafeMode().allow_remote_code is False
    assert safe_mode({"STUDIO_ALLOW_REMOTE_CODE": "1"}).allow_remote_code is True
    assert safe_mode({"STUDIO_ALLOW_REMOTE_CODE": "1", "SPACE_ID": "a/b"}).allow_remote_code is False
    # a private Space with safe mode off still does not run model code for its visitors
    assert safe_mode({"STUDIO_ALLOW_REMOTE_CODE": "1", "SPACE_ID": "a/b", "STUDIO_SAFE_MODE": "0"}).allow_remote_code is False
    assert safe_mode({"STUDIO_ALLOW_REMOTE_CODE": "1", "STUDIO_SAFE_MODE": "1"}).allow_remote_code is False

    import argparse

    from studio.ui import launch

    p = argparse.ArgumentParser()
    launch.add_arguments(p)
    assert p.parse_args([]).allow_remote_code is False
    assert p.parse_args(["--allow-remote-code"]).allow_remote_code is True


def test_a_model_that_needs_remote_code_is_refused_in_the_ui(tmp_path, monkeypatch, runs_parent):
    from studio.models.loading import load_model, load_tokenizer, needs_remote_code
    from studio.ui import model_tab as mt
    from studio.ui import train_tab as tt

    monkeypatch.delenv("STUDIO_ALLOW_REMOTE_CODE", raising=False)
    marker = tmp_path / "remote-code-ran"
    evil = _remote_code_model(tmp_path / "evil", marker)
    assert needs_remote_code(str(evil)) and needs_remote_code("chatglm3-6b")
    assert not needs_remote_code("embedded") and not needs_remote_code("smollm2-135m-instruct")

    # The Train tab: the config asks for remote code because the model needs it, and starting refuses it.
    base = RunConfig().to_dict()
    base["data"]["train_file"] = str(_rows(tmp_path / "d.jsonl"))
    res = tt.start_run({"name": str(evil)}, base)
    assert res["started"] is False
    assert "trust_remote_code" in res["status"] and "--allow-remote-code" in res["status"]
    zh = tt.start_run({"name": str(evil)}, base, "zh")["status"]
    assert "远程" in zh or "自带的代码" in zh
    assert not runs_parent.exists() or not list(runs_parent.iterdir())  # no run folder was made

    # A recipe or config that asks for it is refused as well, even for a model that does not need it.
    cfg = RunConfig()
    cfg.model.trust_remote_code = True
    with pytest.raises(StudioError, match="allow-remote-code"):
        space.check_browser_config(cfg)

    # The Model tab shows the estimate, says what is needed, and "Use this model" refuses it.
    res = mt.evaluate({"model": "chatglm3-6b"})
    assert res["ok"] and res["model_ctx"]["needs_remote_code"] is True
    assert "--allow-remote-code" in res["notes_md"]
    assert mt.use_message(res).startswith("⛔") and "--allow-remote-code" in mt.use_message(res)

    # Loading refuses too (transformers' own check), with the same sentence; the model's code never runs.
    for load in (load_model, load_tokenizer):
        with pytest.raises(StudioError, match="allow-remote-code"):
            load(str(evil))
    assert not marker.exists()

    # On a Space the sentence says it is never allowed there, whatever the variable says.
    monkeypatch.setenv("SPACE_ID", "owner/studio")
    monkeypatch.setenv("STUDIO_ALLOW_REMOTE_CODE", "1")
    with pytest.raises(StudioError, match="never allowed on this public Space"):
        policy.check_remote_code(cfg)


def test_the_server_switch_lets_the_ui_ask_for_remote_code(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_ALLOW_REMOTE_CODE", "1")
    evil = _remote_code_model(tmp_path / "evil", tmp_path / "marker")
    cfg = RunConfig()
    cfg.model.name = str(evil)
    assert space.check_browser_config(cfg).model.trust_remote_code is True
    plain = space.check_browser_config(RunConfig())
    assert plain.model.trust_remote_code is False  # only a model that needs it gets it


def test_the_cli_config_counts_as_explicit(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """`studio train` with trust_remote_code: true in the YAML is the person at the keyboard asking."""
    from studio.cli import main

    monkeypatch.delenv("STUDIO_ALLOW_REMOTE_CODE", raising=False)
    cfg = _tiny_args(RunConfig())
    cfg.model.name = str(tiny_model_dir)
    cfg.model.trust_remote_code = True
    cfg.data.train_file = str(_rows(tmp_path / "d.jsonl"))
    cfg.save(tmp_path / "c.yaml")
    assert main(["train", str(tmp_path / "c.yaml"), "--output-dir", str(tmp_path / "runs")]) == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert RunConfig.load(run / "config.yaml").model.trust_remote_code is True
    assert (run / "adapter" / "adapter_model.safetensors").is_file()


# ---- 2. uploads capped, files kept per session -----------------------------------------------------------

def test_files_written_for_a_session_stay_in_its_own_folder(tmp_path, home, runs_parent):
    from studio.paths import SAMPLES_DIR
    from studio.ui import compare_tab as ct
    from studio.ui import data_tab as dt
    from studio.ui import export_tab as et

    assert session_dir("abc") != session_dir("xyz") and session_dir("abc").parent == home / "sessions"
    assert session_dir("../../etc").resolve().is_relative_to(home / "sessions")  # no way out through the name

    # the Train tab's upload: a copy of this session's own, under a name no other upload shares
    up = _rows(tmp_path / "gradio" / "same.jsonl")
    a, b, a2 = keep_upload(up, "s-a", "train-uploads"), keep_upload(up, "s-b", "train-uploads"), keep_upload(up, "s-a", "train-uploads")
    assert len({a, b, a2}) == 3 and a.name == "same.jsonl"
    assert a.is_relative_to(session_dir("s-a")) and b.is_relative_to(session_dir("s-b"))

    # the Data tab's prepared set
    res = dt.load_data(SAMPLES_DIR / "reviews_sentiment.jsonl", session="s-a", copy=False)
    out = dt.use_for_training(res["state"], None, {}, {}, "none", session="s-a")
    assert out["ok"], out.get("error")
    assert Path(out["data"]["train_file"]).is_relative_to(session_dir("s-a"))

    # the Compare tab's DPO pairs and CSV export, for a run two sessions vote on
    run = runs_parent / "20250101-000000-r"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    RunConfig().save(run / "config.yaml")
    rec = {"kind": "vote", "round_id": "r1", "voter": "v", "messages": [{"role": "user", "content": "hi"}],
           "answers": {"base": "meh", "finetuned": "hello!"}, "sides": {"A": "base", "B": "finetuned"},
           "vote": "B", "winner": "finetuned"}
    (run / "votes.jsonl").write_text(json.dumps(rec) + "\n")
    pa, pb = ct.save_preferences(str(run), session="s-a"), ct.save_preferences(str(run), session="s-b")
    fa, fb = Path(pa["preferences"]["train_file"]), Path(pb["preferences"]["train_file"])
    assert fa != fb and fa.is_relative_to(session_dir("s-a")) and fb.is_relative_to(session_dir("s-b"))
    assert fa.name == "preferences.jsonl" and not (run / "data" / "preferences.jsonl").exists()
    ea = ct.export(str(run), session="s-a")
    assert ea["files"] and all(Path(f).is_relative_to(session_dir("s-a")) for f in ea["files"])

    # downloads are served from the session's own temp folder
    served = et._servable(str(fa), "s-a")
    assert "/s-a/" in served and Path(served).read_bytes() == fa.read_bytes()


def test_uploads_are_size_capped():
    from studio import space as sp

    assert sp.launch_kwargs(SPACE_LIMITS)["max_file_size"] == f"{SPACE_LIMITS.max_upload_mb}mb"
    src = (REPO_ROOT / "studio" / "ui" / "launch.py").read_text()
    assert 'kwargs["max_file_size"]' in src  # a workstation has a cap too (see test_login below for the live app)


# ---- 3. paths confined on a Space ------------------------------------------------------------------------

@pytest.fixture()
def app_dirs(tmp_path, monkeypatch):
    root = tmp_path / "app"
    for d in ("home", "runs/20250101-000000-r", "gradio/abc"):
        (root / d).mkdir(parents=True)
    monkeypatch.setenv("STUDIO_HOME", str(root / "home"))
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(root / "runs"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    (tmp_path / "secret.txt").write_text("secret")
    (root / "runs" / "link").symlink_to(tmp_path / "secret.txt")
    (root / "home" / "dirlink").symlink_to(tmp_path)
    return root


def test_paths_are_confined_on_a_space(app_dirs, tmp_path, monkeypatch):
    root = app_dirs
    run = root / "runs" / "20250101-000000-r"
    assert confine(run, SPACE_LIMITS) == run.resolve()
    assert confine(str(root / "gradio" / "abc" / "up.jsonl"), SPACE_LIMITS).parent == (root / "gradio" / "abc").resolve()
    monkeypatch.chdir(run)
    bad = ["../../etc/passwd", "../../../../../../etc/passwd", "/etc/passwd", str(tmp_path / "secret.txt"),
           str(root / "runs" / "link"), str(root / "home" / "dirlink" / "secret.txt"),
           str(root / "runs" / ".." / ".." / "secret.txt"), "~/.ssh/id_rsa",
           str(run) + "/..%2f..%2f..%2f..%2fsecret.txt", "%2e%2e/%2e%2e/%2e%2e/secret.txt",
           str(run) + "/%252e%252e%252f%252e%252e%252f%252e%252e%252fsecret.txt",
           str(run) + "/x\x00/../../../secret.txt", "", "   "]
    for p in bad:
        with pytest.raises(StudioError, match="outside the app's own folders") as e:
            confine(p, SPACE_LIMITS)
        assert e.value.text("zh") and e.value.text("zh") != e.value.en  # bilingual
    # a workstation: only normalised
    assert confine("/etc/passwd", SafeMode()) == Path("/etc/passwd")
    assert confine("../../x", SafeMode()) == (run / "../../x").resolve()


def test_every_ui_entry_point_confines_on_a_space(app_dirs, tmp_path, monkeypatch):
    from studio.ui import model_tab as mt
    from studio.ui import train_tab as tt

    monkeypatch.setenv("SPACE_ID", "owner/studio")
    # the Model tab's model name (a folder outside, a traversal), refused before anything is read
    for name in ("/etc", str(tmp_path), "../../etc", "~/models"):
        res = mt.evaluate({"model": name})
        assert not res["ok"] and "off limits" in res["verdict_md"]
    assert mt.evaluate({"model": "smollm2-135m-instruct"})["ok"]  # a catalog id is fine
    # the Train tab: the model name typed in the advanced panel, and the data file
    base = RunConfig().to_dict()
    base["data"]["train_file"] = "/etc/passwd"
    res = tt.start_run({}, base)
    assert not res["started"] and "outside the app's own folders" in res["status"]
    base["data"]["train_file"] = str(_rows(app_dirs / "home" / "sessions" / "s" / "d.jsonl"))
    res = tt.start_run({"name": str(tmp_path)}, base)
    assert not res["started"] and "off limits" in res["status"]
    # the Export and Compare tabs take only a run the app lists
    from studio.ui import compare_tab as ct
    from studio.ui import export_tab as et

    for checked in (et.checked_run, ct.checked_run):
        with pytest.raises(StudioError):
            checked(str(tmp_path))


# ---- 4. Hub tokens ---------------------------------------------------------------------------------------

ENV_MARKER = "hf_ENVmarkerSTUDIOsecurity0123456789zz"
TYPED_MARKER = "hf_TYPEDmarkerSTUDIOsecurity987654321yy"


def _encodings(secret: str) -> list[bytes]:
    """The secret, and its base64 at each of the three byte alignments (the core that does not depend on
    the bytes around it), as a JSON or HTTP layer might have written it."""
    raw = secret.encode()
    forms = [raw]
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw)
        core = enc[4 if k else 0:-4]
        forms += [core, base64.urlsafe_b64encode(b"\0" * k + raw)[4 if k else 0:-4]]
    return forms


def _scan_tree(root: Path, secrets: list[str]) -> list[str]:
    found = []
    for f in root.rglob("*"):
        if f.is_file() and not f.is_symlink():
            data = f.read_bytes()
            for s in secrets:
                if any(form in data for form in _encodings(s)):
                    found.append(f"{s[:12]}… in {f}")
    return found


def _scan_text(text: str, secrets: list[str]) -> list[str]:
    data = text.encode("utf-8", "replace")
    return [s[:12] for s in secrets if any(form in data for form in _encodings(s))]


def _module_leaks(secrets: list[str]) -> list[str]:
    """Module-level variables of the studio (and of its tabs) that hold a secret: another session reads those."""
    import sys

    leaks = []
    for name, mod in list(sys.modules.items()):
        if not name.startswith("studio") or mod is None:
            continue
        for var, value in vars(mod).items():
            try:
                text = value if isinstance(value, str) else repr(value) if isinstance(value, (dict, list, tuple, set)) else ""
            except Exception:
                continue
            if any(s in text for s in secrets):
                leaks.append(f"{name}.{var}")
    return leaks


def test_hub_tokens_never_reach_disk_logs_or_other_sessions(tiny_model_dir, tmp_path, monkeypatch, capfd, caplog):
    import huggingface_hub.constants
    from test_export_hub import FakeHub

    from studio.engine.job import Job
    from studio.ui import export_tab as et

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_TOKEN", ENV_MARKER)
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(tempfile, "tempdir", str((tmp_path / "tmp").resolve()))  # temp files land where we scan
    (tmp_path / "tmp").mkdir()

    cfg = _tiny_args(RunConfig())
    cfg.model.name = str(tiny_model_dir)
    cfg.data.train_file = str(_rows(tmp_path / "data" / "train.jsonl"))
    job = Job(cfg).start()
    assert job.wait(300) and job.state == "completed", job.error
    run = job.run_dir

    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        from_env = et.push(str(run), "alice/tiny-env", token=None, space=False)
        typed = et.push(str(run), "alice/tiny-typed", token=TYPED_MARKER, space=False)
        bad = None
        with FakeHub(fail_status=401) as failing:
            monkeypatch.setenv("HF_ENDPOINT", failing.url)
            bad = et.push(str(run), "alice/tiny-bad", token=TYPED_MARKER, space=False)
    assert from_env["hub"].startswith("✅") and typed["hub"].startswith("✅"), (from_env, typed)
    assert bad["hub"].startswith("⚠️")
    # the tokens were used, and only in the Authorization header
    auths = [a for _, _, a in hub.requests]
    assert f"Bearer {ENV_MARKER}" in auths and f"Bearer {TYPED_MARKER}" in auths
    assert all(_scan_text(c.decode("utf-8", "replace"), [ENV_MARKER, TYPED_MARKER]) == [] for c in hub.files.values())
    exported = et.export(str(run), adapter=True, merge=False, card=True)
    assert exported.get("zip"), exported

    secrets = [ENV_MARKER, TYPED_MARKER]
    assert _scan_tree(tmp_path, secrets) == []  # the run folder, its export, STUDIO_HOME, temp files, the data
    assert _scan_tree(run, secrets) == []
    for shown in (from_env, typed, bad, exported, job.snapshot()):
        assert _scan_text(json.dumps(shown, default=str, ensure_ascii=False), secrets) == []
    out = capfd.readouterr()
    assert _scan_text(out.out + out.err, secrets) == []
    assert _scan_text(caplog.text, secrets) == []
    assert _module_leaks(secrets) == []


def test_the_token_box_is_never_an_output_or_state():
    """In the page: the password box's value goes into the push handler as an input and nowhere else."""
    import gradio as gr

    from studio.ui.app import build_app

    demo = build_app()
    token = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "export-token")
    assert token.type == "password"
    uses = [d for d in demo.fns.values() if token in d.inputs or token in d.outputs]
    assert uses and all(token not in d.outputs for d in uses)
    assert len(uses) == 1  # only the push reads it
    src = (REPO_ROOT / "studio" / "ui" / "export_tab.py").read_text()
    assert not re.search(r"gr\.State\([^)]*tok", src)
    assert not any(isinstance(b, gr.State) and isinstance(b.value, str) and b.value.startswith("hf_")
                   for b in demo.blocks.values())


# ---- 5. optional login -----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parse_auth():
    from studio.ui.launch import parse_auth

    assert parse_auth("") == [] and parse_auth(None) == []
    assert parse_auth("alice:pw") == [("alice", "pw")]
    assert parse_auth("alice:p:w,bob:x") == [("alice", "p:w"), ("bob", "x")]
    for bad in ("alice", "alice:", ":pw", "alice:pw,bob"):
        with pytest.raises(StudioError) as e:
            parse_auth(bad)
        assert bad not in e.value.en and bad not in e.value.text("zh")  # the value (a password, maybe) is not echoed


def test_login_is_required_when_auth_is_set(runs_parent, tmp_path, monkeypatch, capfd):
    import httpx

    from studio.ui.launch import launch

    monkeypatch.setenv("HF_TOKEN", ENV_MARKER)  # STUDIO_HOME stays: its converted embedded model saves seconds
    port = _free_port()
    demo = launch(host="127.0.0.1", port=port, auth="alice:pw-one-Zq9,bob:pw-two-Xk7", block=False)
    url = f"http://127.0.0.1:{port}"
    try:
        assert demo.max_file_size  # uploads are capped on a workstation too
        with httpx.Client(base_url=url, timeout=30) as anon:
            for path in ("/config", "/gradio_api/info"):
                r = anon.get(path)
                assert r.status_code == 401, (path, r.status_code)
            r = anon.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x"})
            assert r.status_code == 401
            r = anon.post("/login", data={"username": "alice", "password": "wrong"})
            assert r.status_code == 400
            assert anon.get("/config").status_code == 401
        for user, password in (("alice", "pw-one-Zq9"), ("bob", "pw-two-Xk7")):
            with httpx.Client(base_url=url, timeout=30) as client:
                r = client.post("/login", data={"username": user, "password": password})
                assert r.status_code == 200 and r.json() == {"success": True}
                r = client.get("/config")
                assert r.status_code == 200 and "components" in r.json()
                assert client.get("/gradio_api/info").status_code == 200
    finally:
        demo.close()
    out = capfd.readouterr()
    text = out.out + out.err
    for secret in ("pw-one-Zq9", "pw-two-Xk7", ENV_MARKER):
        assert secret not in text, f"{secret[:6]}… printed at start"


# ---- 6. no pickle loading of user files ------------------------------------------------------------------

class _Boom:
    """Unpickling this creates a file: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def test_pickle_weights_are_refused(tiny_model_dir, tmp_path):
    from studio.models.loading import check_safetensors, load_model

    marker = tmp_path / "unpickled"
    folder = tmp_path / "bin-model"
    folder.mkdir()
    for f in tiny_model_dir.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors"):
            (folder / f.name).write_bytes(f.read_bytes())
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(marker)))
    with pytest.raises(StudioError, match=r"pickle format \(\.bin\), which can run code when loaded; convert it to safetensors") as e:
        load_model(str(folder))
    assert e.value.text("zh") != e.value.en
    assert not marker.exists()
    check_safetensors(tiny_model_dir)  # a safetensors folder is fine

    # an adapter of pickles, in a run the Compare and Export tabs would load
    from studio.engine.runs import load_run_model
    from studio.export import merge_model

    run = tmp_path / "runs" / "r"
    (run / "adapter").mkdir(parents=True)
    cfg = RunConfig()
    cfg.model.name = str(tiny_model_dir)
    cfg.save(run / "config.yaml")
    (run / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (run / "adapter" / "adapter_model.bin").write_bytes(pickle.dumps(_Boom(marker)))
    for load in (lambda: load_run_model(run, device="cpu"), lambda: merge_model(run, tmp_path / "out", device="cpu")):
        with pytest.raises(StudioError, match="pickle format"):
            load()
    assert not marker.exists()


def test_models_load_with_safetensors_only(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    from studio.models import loading

    seen = {}
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    loading.load_model(str(tiny_model_dir))
    assert seen.get("use_safetensors") is True and seen.get("trust_remote_code") is False


def test_data_readers_never_unpickle(tmp_path):
    from studio.data.read import read_file

    marker = tmp_path / "unpickled"
    for name in ("rows.pkl", "rows.pickle", "rows.jsonl", "rows.npy"):
        f = tmp_path / name
        f.write_bytes(pickle.dumps(_Boom(marker)))
        try:
            read_file(f)
        except StudioError:
            pass
    assert not marker.exists()


FORBIDDEN = ("pickle.load", "pickle.loads", "import pickle", "from pickle", "cPickle", "dill.load", "joblib.load",
             "cloudpickle", "torch.load(", "read_pickle", "allow_pickle=True", "weights_only=False",
             "trust_remote_code=True", "use_safetensors=False")


def test_no_pickle_or_remote_code_literals_in_the_studio():
    offenders = []
    for f in sorted((REPO_ROOT / "studio").rglob("*.py")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            offenders += [f"{f.relative_to(REPO_ROOT)}:{n}: {word}" for word in FORBIDDEN if word in code]
    assert offenders == []


def test_a_refused_request_gets_a_plain_message_and_one_log_line(runs_parent, monkeypatch, capfd, caplog):
    """A client sends server paths no one uploaded to every file input (the Data and Train tabs' uploads), and
    a server path to every dropdown (Compare's and Export's runs, the samples, the presets): gradio refuses
    them before any handler runs; the answer is the plain refusal in the page's language, no traceback."""
    import gradio as gr
    import gradio_client.client as gcc
    from gradio_client import Client

    from studio.messages import say
    from studio.paths import gradio_upload_dir
    from studio.ui.launch import launch

    # what a hostile client does: name a path on the server instead of uploading a file
    monkeypatch.setattr(gcc.Endpoint, "_upload_file", lambda self, f, data_index: f)
    port = _free_port()
    demo = launch(host="127.0.0.1", port=port, block=False)
    url = f"http://127.0.0.1:{port}"
    bad_files = ["/etc/passwd", str(gradio_upload_dir() / "abc" / ".." / ".." / ".." / "etc" / "passwd")]
    fns = [f for f in demo.fns.values() if f.fn is not None]
    uploads = [f for f in fns if any(isinstance(b, gr.File) for b in f.inputs)]
    choices = [f for f in fns if any(isinstance(b, gr.Dropdown) for b in f.inputs)]
    assert len(uploads) >= 2 and len(choices) >= 10
    caplog.set_level(logging.WARNING, logger="studio.ui")
    asked = 0
    try:
        for lang, header in (("en", "en-GB"), ("zh", "zh-CN,zh;q=0.9")):
            client = Client(url, verbose=False, headers={"Accept-Language": header})

            def refused(f, value, kind):
                args = [value if isinstance(b, kind) else None for b in f.inputs if not isinstance(b, gr.State)]
                with pytest.raises(Exception) as e:
                    client.predict(*args, fn_index=f._id)
                return str(e.value)

            for f in uploads:
                for path in bad_files:
                    file = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd"}
                    assert refused(f, file, gr.File) == say("paths.not_uploaded", lang), f.name
                    asked += 1
            for f in choices:
                assert refused(f, "/etc/passwd", gr.Dropdown) == say("app.refused_input", lang), f.name
                asked += 1
            assert client.predict(fn_index=next(f._id for f in fns if f.name == "restore")) is not None  # still works
    finally:
        demo.close()
    out = capfd.readouterr()
    assert "Traceback" not in out.out + out.err and "InvalidPathError" not in out.out + out.err
    lines = [r for r in caplog.records if r.getMessage().startswith("refused a request to ")]
    assert len(lines) == asked and all("\n" not in r.getMessage() for r in lines)
