"""The shape the codebase keeps: the engine imports no gradio, no module imports itself back through
another (not even inside a function), tab modules stay thin, and one arbiter hands out the device."""

import ast
import threading
import time
from pathlib import Path

import pytest

from studio.device_arbiter import DeviceArbiter, DeviceBusy

STUDIO = Path(__file__).resolve().parents[1] / "studio"
TAB_LINES = 600  # a tab lays out components and calls plain functions


def _name(path: Path) -> str:
    parts = list(path.relative_to(STUDIO.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in STUDIO.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every studio module `path` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                    for a in node.names}
    return {m for m in out if m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = {m: _imports(p) - {m} for m, p in MODULES.items()}
    # a package's __init__ re-exporting its own modules is not a cycle between concepts
    graph = {m: {d for d in deps if not (d.startswith(m + ".") or m.startswith(d + "."))} for m, deps in graph.items()}
    assert _cycles(graph) == []


def test_no_gradio_outside_the_ui():
    users = [m for m, p in MODULES.items() if not m.startswith("studio.ui")
             and any(d == "gradio" or d.startswith("gradio.") for d in _all_imports(p))]
    assert users == []


def _all_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_tab_modules_stay_thin():
    fat = {p.name: n for p in (STUDIO / "ui").glob("*_tab.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > TAB_LINES}
    assert fat == {}


# ---- the device arbiter ----------------------------------------------------------------------------

def test_every_data_file_under_studio_ships_with_the_package():
    """A file the code reads next to itself (studio/locales/*.yaml, studio/data/columns.yaml, ...) is package
    data in pyproject.toml, or an installed studio cannot start."""
    import tomllib

    config = tomllib.loads((STUDIO.parent / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["studio"]
    shipped = {p for pattern in patterns for p in STUDIO.glob(pattern)}
    data = {p for p in STUDIO.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts}
    assert data, "no data files found: the scan is broken"
    assert not data - shipped, sorted(str(p.relative_to(STUDIO)) for p in data - shipped)


def test_training_and_generation_never_hold_the_device_together():
    arbiter, holders, overlaps = DeviceArbiter(), [], []
    lock = threading.Lock()

    def note(who, delta):
        with lock:
            holders.append(who) if delta > 0 else holders.remove(who)
            if len(holders) > 1 and "train" in holders:
                overlaps.append(list(holders))

    def trainer(i):
        for _ in range(30):
            me = object()
            try:
                arbiter.claim_training(me)
            except DeviceBusy:
                time.sleep(0.0005)
                continue
            note("train", 1)
            time.sleep(0.0005)
            note("train", -1)
            arbiter.release_training(me)

    def generator(i):
        for _ in range(30):
            try:
                with arbiter.generation(timeout=5):
                    note(f"gen{i}", 1)
                    time.sleep(0.0002)
                    note(f"gen{i}", -1)
            except DeviceBusy:
                time.sleep(0.0005)

    threads = [threading.Thread(target=trainer, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=generator, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert overlaps == [] and holders == []
    assert arbiter.queued() == 0 and not arbiter.training_busy()


def test_a_claim_is_refused_while_the_other_waits_or_holds():
    arbiter = DeviceArbiter()
    with arbiter.generation():
        with pytest.raises(DeviceBusy) as e:
            arbiter.claim_training("run")
        assert e.value.message.key == "engine.busy.generating"
    run = object()
    arbiter.claim_training(run)
    with pytest.raises(DeviceBusy) as e:
        with arbiter.generation():
            pass
    assert e.value.message.key == "engine.busy.training"
    with pytest.raises(DeviceBusy):
        arbiter.claim_training(object())  # one run at a time
    arbiter.release_training(run)
    with arbiter.generation():
        pass
    freed = []
    arbiter.on_training_claim(lambda: freed.append(True))
    arbiter.claim_training(run)
    assert freed == [True]  # whoever held memory for generating gives it back


def test_a_generation_that_gave_up_waiting_does_not_block_the_queue():
    arbiter = DeviceArbiter()
    assert arbiter.acquire()
    assert arbiter.acquire(timeout=0.05) is False  # its turn did not come: abandoned
    arbiter.release()
    assert arbiter.queued() == 0
    with arbiter.generation(timeout=1):
        pass
