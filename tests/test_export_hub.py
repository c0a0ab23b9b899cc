"""Push to the Hugging Face Hub against a fake Hub: a small HTTP server on 127.0.0.1 that answers the
three calls huggingface_hub makes for a push (create repo, preupload, commit). Everything above the
HTTP boundary is the real huggingface_hub client. The token must reach the server in the
Authorization header, and nowhere else: not in a file, a message, the output or the result."""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from studio.errors import StudioError

TOKEN = "hf_studioTESTtoken0123456789abcdefXYZ"


class FakeHub:
    def __init__(self, fail_status: int | None = None):
        self.requests: list[tuple[str, str, str]] = []  # method, path, authorization
        self.created: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.fail_status = fail_status
        self.readme_checked = False
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.requests.append(("POST", self.path, self.headers.get("Authorization", "")))
                if hub.fail_status:
                    return self._reply(hub.fail_status, {"error": "Invalid credentials in Authorization header"})
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    d = json.loads(body)
                    hub.created.append(d)
                    repo = f"{d.get('organization') or 'me'}/{d['name']}"
                    return self._reply(200, {"url": f"{hub.url}/{repo}", "name": repo})
                if path == "/api/validate-yaml":  # the client checks README.md's front matter first
                    hub.readme_checked = True
                    return self._reply(200, {"errors": [], "warnings": []})
                if "/preupload/" in path:
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False} for f in files]})
                if "/commit/" in path:
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            v = item["value"]
                            hub.files[v["path"]] = base64.b64decode(v["content"])
                    repo = path.split("/api/models/")[1].split("/commit/")[0]
                    return self._reply(200, {"commitUrl": f"{hub.url}/{repo}/commit/{'a' * 40}",
                                             "commitOid": "a" * 40, "pullRequestUrl": None})
                return self._reply(404, {"error": f"not faked: {path}"})

            def do_GET(self):
                hub.requests.append(("GET", self.path, self.headers.get("Authorization", "")))
                return self._reply(404, {"error": "not faked"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """tests/conftest.py turns the Hub client offline for the whole suite; these tests talk to 127.0.0.1."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from test_export import make_base, make_run

    root = tmp_path_factory.mktemp("hub")
    return make_run(root, make_base(root / "base")), root


def _no_token_anywhere(root: Path):
    for f in root.rglob("*"):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes(), f"the token was written to {f}"


def test_push_sends_the_token_only_in_the_header(tiny_run, tmp_path, monkeypatch, capsys, caplog):
    from studio.export import export_run

    run, root = tiny_run
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        seen = []
        res = export_run(run, tmp_path / "out", push_repo="alice/tiny-lora", token=TOKEN,
                         progress=lambda f, m: seen.append(m))

    assert res.hub_url == f"{hub.url}/alice/tiny-lora"
    assert hub.created[0]["name"] == "tiny-lora" and hub.created[0]["organization"] == "alice"
    assert hub.created[0]["visibility"] == "private"
    assert [p for _, p, _ in hub.requests] == ["/api/repos/create", "/api/validate-yaml",
                                               "/api/models/alice/tiny-lora/preupload/main",
                                               "/api/models/alice/tiny-lora/commit/main"]
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in hub.requests)
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
            "rerun/config.yaml", "rerun/accelerate-fsdp.yaml", "rerun/COMMANDS.md"} <= set(hub.files)
    pushed_config = hub.files["rerun/config.yaml"].decode()
    assert "train_file: data/train.jsonl" in pushed_config and str(root) not in pushed_config
    assert b"library_name: peft" in hub.files["README.md"]
    assert any("Uploading" in str(m) for m in seen)

    for content in hub.files.values():
        assert TOKEN.encode() not in content
    _no_token_anywhere(tmp_path)
    _no_token_anywhere(run)
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + caplog.text
    assert TOKEN not in repr(res)


def test_push_public_and_token_from_env(tiny_run, tmp_path, monkeypatch):
    from studio.export import export_adapter, push_to_hub

    run, _ = tiny_run
    folder = export_adapter(run, tmp_path)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with FakeHub() as hub:
        url = push_to_hub(folder, "tiny-public", private=False, endpoint=hub.url)
    assert hub.created[0]["visibility"] == "public"
    assert url.endswith("/me/tiny-public")  # a bare name lands in the token owner's namespace
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in hub.requests)
    _no_token_anywhere(tmp_path)


def test_push_failures_are_one_sentence_without_the_token(tiny_run, tmp_path, monkeypatch):
    import huggingface_hub

    from studio.export import export_adapter, push_to_hub

    run, _ = tiny_run
    folder = export_adapter(run, tmp_path)

    with FakeHub(fail_status=401) as hub, pytest.raises(StudioError) as e:
        push_to_hub(folder, "alice/x", token=TOKEN, endpoint=hub.url)
    assert "did not accept the token" in str(e.value) and TOKEN not in str(e.value)
    assert e.value.__cause__ is None and e.value.__context__ is None

    with socket.socket() as s:  # a port nobody listens on: the machine is "offline"
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(StudioError) as e:
        push_to_hub(folder, "alice/x", token=TOKEN, endpoint=closed)
    message = str(e.value)
    assert "offline" in message and TOKEN not in message and "\n" not in message

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(StudioError, match="No Hugging Face token"):
        push_to_hub(folder, "alice/x", endpoint=closed)
    with pytest.raises(StudioError, match="Name the Hub repository"):
        push_to_hub(folder, "  ", token=TOKEN, endpoint=closed)


def test_on_a_space_the_owners_token_is_never_used(tiny_run, tmp_path, monkeypatch):
    """HF_TOKEN on a Space is the owner's secret: a visitor's push must bring its own token."""
    from studio.export import export_adapter, push_to_hub

    run, _ = tiny_run
    folder = export_adapter(run, tmp_path)
    monkeypatch.setenv("SPACE_ID", "owner/studio")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with FakeHub() as hub, pytest.raises(StudioError, match="type your own Hugging Face token"):
        push_to_hub(folder, "alice/x", endpoint=hub.url)
    assert hub.requests == []
    with FakeHub() as hub:
        push_to_hub(folder, "alice/x", token="hf_visitorsOwnToken123", endpoint=hub.url)
    assert {auth for _, _, auth in hub.requests} == {"Bearer hf_visitorsOwnToken123"}
