"""What watching a run costs the run: the smoke recipe trained while N browser-like clients poll the
Train tab's live panel, against the same run with nobody watching. Target: at most 2% of throughput.

The app is launched in this process, as `studio ui` does (the trainer runs in the server's process),
and the clients are real gradio_client sessions in a separate process (on a core of their own where the
machine has 2 to 4: a viewer's browser runs on the viewer's machine), each calling the tab's timer
event (`/train_poll`) once a second like an open browser tab.

Three measurements:
1. chart redraw: server time and bytes for one update of the five charts, as plain LinePlot
   payloads (what the tab sends), as pandas DataFrames, and as plotly figures;
2. UI CPU: the server process's CPU time while N clients watch a simulated run that logs a step
   every --step-seconds, minus the same with nobody watching. Exact on a busy machine too, where
   throughput differences drown in other processes' noise;
3. throughput A/B: --trials real runs of the recipe watched and unwatched, alternating, tokens/s
   between the first and the last logged step (model loading excluded, as benchmarks/throughput.py).

    python benchmarks/ui_overhead.py [--clients 4] [--trials 3] [--steps 8] [--model embedded]
                                     [--cpu-seconds 40] [--step-seconds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ---- one client process: N sessions polling like browser tabs ---------------------------------------------

def client_main(url: str, n: int, period: float, out: str, core: int = -1) -> None:
    import threading

    if core >= 0:
        os.sched_setaffinity(0, {core})

    from gradio_client import Client

    stop = threading.Event()
    stats = {"polls": 0, "times": [], "latency": [], "bytes": [], "first_seen": {}}
    lock = threading.Lock()

    def one():
        import httpx

        client = Client(url, verbose=False)
        http = httpx.Client()
        last = None
        while not stop.is_set():
            t0 = time.time()
            try:
                # like the page's poller: the live key every second; when it changed, the tab's update:
                # the progress bar, and when the run moved on the curves (health, log, loss, ...) too
                key = http.get(url + "studio/live", timeout=30).json()["key"]
                live, size = None, 0
                if key != last:
                    live = client.predict(api_name="/train_poll")
                    size = len(json.dumps(live, default=str))
                    last = key
            except Exception as e:  # keep polling, like a browser would
                print("poll failed:", e, file=sys.stderr)
                time.sleep(period)
                continue
            t1 = time.time()
            loss = live[3] if isinstance(live, (list, tuple)) and len(live) > 3 else None
            with lock:
                stats["polls"] += 1
                stats["times"].append(t1)
                stats["latency"].append(t1 - t0)
                stats["bytes"].append(size)
                if isinstance(loss, dict) and isinstance(loss.get("value"), dict):
                    loss = loss["value"]
                if isinstance(loss, dict) and "data" in loss:
                    for row in loss["data"]:
                        # the series is named in both languages ("training · 训练"): its first word
                        stats["first_seen"].setdefault(f"{row[0]}:{str(row[2]).split()[0]}", t1)
            stop.wait(max(0.0, period - (t1 - t0)))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for th in threads:
        th.start()
    try:
        while not Path(out + ".stop").exists():
            time.sleep(0.2)
    finally:
        stop.set()
        for th in threads:
            th.join(10)
        Path(out).write_text(json.dumps(stats))


# ---- the server side ---------------------------------------------------------------------------------------

def split_cores(client_core: int = -2) -> int:
    """Run the watching clients on one core and the server and the trainer on the others, as if the
    viewers were on their own machines (a browser's cost is not the server's). -2: the last core on a
    machine with 2 to 4 cores, else -1; -1: everything shares every core. Returns the clients' core."""
    cores = sorted(os.sched_getaffinity(0))
    if client_core == -2:
        client_core = cores[-1] if 1 < len(cores) <= 4 else -1
    if client_core >= 0:
        server_cores = [c for c in cores if c != client_core]
        os.sched_setaffinity(0, server_cores)
        import torch

        torch.set_num_threads(len(server_cores))
        print(f"server and training on cores {server_cores}, the clients on core {client_core}", flush=True)
    return client_core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def steady_throughput(run_dir: Path) -> float:
    """Tokens per second between the first and the last logged training step."""
    from studio.engine.runs import read_metrics

    events = [e for e in read_metrics(run_dir) if "loss" in e]
    tokens = seconds = 0.0
    for prev, e in zip(events, events[1:]):
        dt = e["time"] - prev["time"]
        if e.get("tokens_per_second") and dt > 0:
            tokens += e["tokens_per_second"] * dt
            seconds += dt
    return tokens / seconds if seconds else float("nan")


def train_once(cfg, out_dir: Path) -> tuple[float, Path]:
    from studio.engine.job import Job

    job = Job(cfg, output_dir=out_dir).start()
    job.wait()
    if job.state != "completed":
        raise SystemExit(f"the run failed: {job.error}")
    return steady_throughput(job.run_dir), job.run_dir


def chart_costs(n_events: int = 300, repeat: int = 20) -> dict:
    """Server time and payload of one full redraw of the five charts: LinePlot frames vs plotly figures."""
    import math

    import gradio as gr
    import orjson
    import plotly.graph_objects as go

    from studio.ui import plots

    metrics = [{"step": i, "epoch": i / 100, "loss": 2 * math.exp(-i / 80) + 0.3, "learning_rate": 2e-4,
                "grad_norm": 1.0 + 0.1 * math.sin(i), "tokens_per_second": 90.0, "memory_bytes": 5e9, "time": i}
               for i in range(1, n_events + 1)]
    metrics += [{"step": i, "eval_loss": 1.0, "epoch": i / 100} for i in range(100, n_events + 1, 100)]
    specs = {"loss": ("step", "loss", "series"), "lr": ("step", "learning_rate", None),
             "grad": ("step", "grad_norm", None), "speed": ("step", "tokens_per_second", None),
             "memory": ("step", "memory_gib", None)}
    lineplots = {k: gr.LinePlot(x=x, y=y, color=c, render=False) for k, (x, y, c) in specs.items()}
    plotlies = {k: gr.Plot(render=False) for k in specs}

    def with_lineplot():
        fr = plots.frames(metrics)
        return [lineplots[k].postprocess(fr[k]) for k in specs]

    def with_plotly():
        fr = plots.frames(metrics)
        out = []
        for k, (x, y, c) in specs.items():
            fig = go.Figure()
            df = fr[k]
            groups = df.groupby(c) if c else [(k, df)]
            for name, g in groups:
                fig.add_trace(go.Scatter(x=g[x], y=g[y], mode="lines", name=str(name)))
            fig.update_layout(height=260, margin=dict(l=40, r=10, t=10, b=30))
            out.append(plotlies[k].postprocess(fig))
        return out

    def with_payloads():
        return list(plots.payloads(metrics).values())

    res = {}
    for name, fn in (("payload", with_payloads), ("lineplot", with_lineplot), ("plotly", with_plotly)):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeat):
            payload = fn()
        ms = (time.perf_counter() - t0) / repeat * 1000
        size = len(orjson.dumps([p.model_dump() if hasattr(p, "model_dump") else p for p in payload],
                                option=orjson.OPT_SERIALIZE_NUMPY, default=str))
        res[name] = {"ms": ms, "bytes": size}
    return res


def simulated_run(step_seconds: float, stop):
    """A Job that looks like a live run to the UI (state, progress, a metric event and a log line every
    `step_seconds`) without training: the UI's own cost, alone."""
    import math
    import threading

    from studio.config import RunConfig
    from studio.engine import job as job_mod

    job = job_mod.Job(RunConfig())
    job.state, job.started_at, job.total_steps = "training", time.time(), 100_000
    job._first_step_at, job._first_step = time.time(), 0
    job_mod._current = job

    def feed():
        while not stop.is_set():
            job.step += 1
            job.epoch = job.step / 1000
            job.metrics.append({"step": job.step, "epoch": job.epoch, "loss": 2 * math.exp(-job.step / 200) + 0.3,
                                "learning_rate": 2e-4, "grad_norm": 1.0, "tokens_per_second": 90.0,
                                "memory_bytes": 5 * 2**30, "time": time.time()})
            job._say(f"step {job.step}")
            stop.wait(step_seconds)

    # start with a run already 300 steps long, so the charts carry a realistic amount of data
    for _ in range(300):
        job.step += 1
        job.metrics.append({"step": job.step, "loss": 1.0, "learning_rate": 2e-4, "grad_norm": 1.0,
                            "tokens_per_second": 90.0, "memory_bytes": 5 * 2**30, "time": time.time()})
    threading.Thread(target=feed, daemon=True).start()
    return job


def ui_cpu(url: str, clients: int, period: float, seconds: float, step_seconds: float, tmp: Path) -> dict:
    """Server-process CPU seconds per second with nobody watching, and with `clients` watching."""
    import threading

    import psutil

    from studio.engine import job as job_mod

    me = psutil.Process()
    stop = threading.Event()
    simulated_run(step_seconds, stop)
    out = {}
    try:
        for n in (0, clients):
            proc = None
            stats_file = tmp / f"cpu-clients-{n}.json"
            if n:
                proc = subprocess.Popen([sys.executable, __file__, "--client", url, "--clients", str(n),
                                         "--period", str(period), "--out", str(stats_file)])
                time.sleep(5)  # connected and polling
            c0, t0 = sum(me.cpu_times()[:2]), time.time()
            time.sleep(seconds)
            c1, t1 = sum(me.cpu_times()[:2]), time.time()
            out[n] = (c1 - c0) / (t1 - t0)
            if proc is not None:
                Path(str(stats_file) + ".stop").write_text("")
                proc.wait(60)
                st = json.loads(stats_file.read_text())
                out["polls_per_s"] = sum(t0 <= x <= t1 for x in st["times"]) / (t1 - t0)
                out["latency"] = st["latency"]
                out["bytes"] = st["bytes"]
    finally:
        stop.set()
        job_mod._current = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(ROOT / "presets/recipes/smoke.yaml"))
    ap.add_argument("--model", default="", help="override the recipe's model (a folder, a catalog id)")
    ap.add_argument("--steps", type=int, default=0, help="override the recipe's max_steps")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--period", type=float, default=1.0, help="seconds between a client's polls (the tab's timer)")
    ap.add_argument("--trials", type=int, default=3, help="watched and unwatched runs each, alternating (0: skip)")
    ap.add_argument("--cpu-seconds", type=float, default=40, help="length of each UI-CPU window (0: skip)")
    ap.add_argument("--step-seconds", type=float, default=1.0, help="a simulated run's seconds per step")
    ap.add_argument("--client-core", type=int, default=-2,
                    help="run the clients on this core and the server on the others (default: the last core on a "
                         "machine with 4 or fewer; -1: share all cores)")
    ap.add_argument("--client", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client_main(args.client, args.clients, args.period, args.out, args.client_core)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args.client_core = split_cores(args.client_core)
    from studio.config import RunConfig
    from studio.engine.trainers import quiet_libraries
    from studio.ui.app import build_app, launch_kwargs

    quiet_libraries()
    costs = chart_costs()
    print("one redraw of the five charts, 300 steps of metrics:")
    for name, label in (("payload", "LinePlot, plain payloads (the tab)"), ("lineplot", "LinePlot, pandas DataFrames"),
                        ("plotly", "plotly figures in gr.Plot")):
        print(f"  {label:<36} {costs[name]['ms']:6.1f} ms  {costs[name]['bytes'] / 1024:6.1f} KiB")

    cfg = RunConfig.load(args.recipe)
    if args.model:
        cfg.model.name = args.model
    if args.steps:
        cfg.training.max_steps = args.steps
    tmp = Path(tempfile.mkdtemp(prefix="ui-overhead-"))
    os.environ["STUDIO_RUNS_DIR"] = str(tmp / "runs")

    demo = build_app()
    demo.queue(default_concurrency_limit=8)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
    url = f"http://127.0.0.1:{port}/"

    cores = len(os.sched_getaffinity(0))
    if args.cpu_seconds > 0:
        cpu = ui_cpu(url, args.clients, args.period, args.cpu_seconds, args.step_seconds, tmp)
        ui = cpu[args.clients] - cpu[0]
        lat = sorted(cpu.get("latency") or [0])
        print(f"\nUI CPU, a simulated run logging a step every {args.step_seconds:g} s: server process "
              f"{100 * cpu[0]:.1f}% of a core unwatched, {100 * cpu[args.clients]:.1f}% with {args.clients} clients "
              f"({cpu.get('polls_per_s', 0):.1f} polls/s; latency median {1000 * lat[len(lat) // 2]:.0f} ms, "
              f"payload median {statistics.median(cpu.get('bytes') or [0]) / 1024:.1f} KiB)")
        nominal = args.clients / args.period
        per_poll = ui / cpu["polls_per_s"] if cpu.get("polls_per_s") else float("nan")
        at_nominal = per_poll * nominal
        print(f"  -> {1000 * per_poll:.1f} ms of server CPU per poll (with the curves' follow-up when the run moved);"
              f" at the nominal {nominal:g} polls/s that is {100 * at_nominal:.2f}% of one core = "
              f"{100 * at_nominal / cores:.2f}% of this machine's {cores} cores: the most watching can take from a "
              f"trainer that uses them all (target <= 2%)")
    if args.trials <= 0:
        demo.close()
        return

    warm = RunConfig.from_dict(cfg.to_dict())
    warm.training.max_steps = 2
    print(f"warm-up run ({warm.model.name}) ...", flush=True)
    train_once(warm, tmp / "warm")

    results = {"watched": [], "unwatched": []}
    polls = []
    for trial in range(args.trials):
        order = ("unwatched", "watched") if trial % 2 == 0 else ("watched", "unwatched")
        for mode in order:
            proc = None
            stats_file = tmp / f"clients-{trial}.json"
            if mode == "watched":
                proc = subprocess.Popen([sys.executable, __file__, "--client", url, "--clients", str(args.clients),
                                         "--period", str(args.period), "--client-core", str(args.client_core),
                                         "--out", str(stats_file)])
                time.sleep(3)  # let the sessions connect and settle into their rhythm
            tps, run_dir = train_once(cfg, tmp / "runs")
            if proc is not None:
                Path(str(stats_file) + ".stop").write_text("")
                proc.wait(60)
                st = json.loads(stats_file.read_text())
                from studio.engine.runs import read_metrics

                logged = {f"{e['step']}:training": e["time"] for e in read_metrics(run_dir) if "loss" in e}
                lags = [st["first_seen"][k] - t for k, t in logged.items() if k in st["first_seen"]]
                polls.append({**st, "lags": lags})
            results[mode].append(tps)
            print(f"trial {trial + 1} {mode:>9}: {tps:7.1f} tokens/s", flush=True)

    watched, unwatched = statistics.median(results["watched"]), statistics.median(results["unwatched"])
    overhead = 100 * (unwatched - watched) / unwatched
    latency = [x for p in polls for x in p["latency"]]
    sizes = [x for p in polls for x in p["bytes"]]
    lags = [x for p in polls for x in p["lags"]]
    print(f"\nwithout the UI: {unwatched:.1f} tokens/s (median of {len(results['unwatched'])}: "
          f"{', '.join(f'{x:.1f}' for x in results['unwatched'])})")
    print(f"with {args.clients} clients polling every {args.period:g} s: {watched:.1f} tokens/s (median of "
          f"{len(results['watched'])}: {', '.join(f'{x:.1f}' for x in results['watched'])})")
    print(f"UI overhead: {overhead:+.2f}% of throughput (target <= 2%)")
    if latency:
        print(f"polls: {len(latency)}, latency median {1000 * statistics.median(latency):.0f} ms, "
              f"p95 {1000 * sorted(latency)[int(0.95 * (len(latency) - 1))]:.0f} ms; "
              f"payload median {statistics.median(sizes) / 1024:.1f} KiB, max {max(sizes) / 1024:.1f} KiB")
    if lags:
        print(f"live-curve lag (trainer logged -> a client saw it): median {statistics.median(lags):.2f} s, "
              f"max {max(lags):.2f} s (target <= 2 s)")
    demo.close()


if __name__ == "__main__":
    main()
