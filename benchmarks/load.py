"""Twenty people on one server while it trains: 20 gradio_client sessions open the app (its page-load
events), poll the Train tab's live panel every second like an open tab, and every few seconds open
another tab's view (run history, the Compare and Export run lists, the Data tab's page load). Targets:
no errors in any session, and training throughput falls by at most 10% against the same run with
nobody connected.

The app runs in this process, as `studio ui` runs it (the trainer in the server's process); the
sessions run in a separate process, as threads. Both share this machine's cores, so the figure is an
upper bound on what remote visitors would cost.

    python benchmarks/load.py [--sessions 20] [--trials 2] [--steps 24] [--model embedded]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# What opening the page and its tabs calls (endpoints that take no typed input from the person).
PAGE_LOAD = ("/on_page", "/on_load", "/on_load_1", "/chosen")
TAB_VIEWS = ("/on_refresh", "/on_follow", "/on_page", "/on_load", "/on_load_1")


def sessions_main(url: str, n: int, period: float, tab_every: float, out: str, core: int) -> None:
    if core >= 0:
        os.sched_setaffinity(0, {core})
    import httpx
    from gradio_client import Client

    stop = threading.Event()
    lock = threading.Lock()
    stats = {"calls": 0, "live_gets": 0, "errors": [], "latency": [], "sessions": 0}

    def call(client, api):
        t0 = time.time()
        try:
            result = client.predict(api_name=api)
            ok = True
        except Exception as e:
            result, ok = None, False
            with lock:
                stats["errors"].append(f"{api}: {type(e).__name__}: {str(e)[:200]}")
        with lock:
            stats["calls"] += 1
            stats["latency"].append(time.time() - t0)
        return result if ok else None

    def one(i: int):
        try:
            client = Client(url, verbose=False)
        except Exception as e:
            with lock:
                stats["errors"].append(f"connect: {type(e).__name__}: {e}")
            return
        with lock:
            stats["sessions"] += 1
        for api in PAGE_LOAD:
            call(client, api)
        k, next_tab, last = i, time.time() + tab_every * (i + 1) / n, None
        http = httpx.Client()
        while not stop.is_set():
            t0 = time.time()
            # like the page's poller: the live key every second, the tab's update when it changed
            try:
                key = http.get(url + "studio/live", timeout=30).json()["key"]
            except Exception as e:
                key = last
                with lock:
                    stats["errors"].append(f"/studio/live: {type(e).__name__}: {str(e)[:200]}")
            with lock:
                stats["live_gets"] += 1
            if key != last:
                call(client, "/train_poll")  # the progress bar, and the curves when the run moved on
                last = key
            if time.time() >= next_tab:
                call(client, TAB_VIEWS[k % len(TAB_VIEWS)])
                k += 1
                next_tab += tab_every
            stop.wait(max(0.0, period - (time.time() - t0)))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
        time.sleep(0.1)
    try:
        while not Path(out + ".stop").exists():
            time.sleep(0.2)
    finally:
        stop.set()
        for th in threads:
            th.join(30)
        Path(out).write_text(json.dumps(stats))


def thread_cpu(before: dict | None = None) -> dict:
    """CPU seconds per thread of this process (by name), or the increase since `before`."""
    import psutil

    names = {t.native_id: t.name for t in threading.enumerate()}
    now = {}
    for t in psutil.Process().threads():
        key = f"{names.get(t.id, 'native')}#{t.id}"
        now[key] = t.user_time + t.system_time
    if before is None:
        return now
    return {k: v - before.get(k, 0.0) for k, v in now.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(ROOT / "presets/recipes/smoke.yaml"))
    ap.add_argument("--model", default="", help="override the recipe's model (a folder, a catalog id)")
    ap.add_argument("--steps", type=int, default=24, help="training steps per run")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--period", type=float, default=1.0, help="seconds between a session's polls")
    ap.add_argument("--tab-every", type=float, default=5.0, help="seconds between a session's other-tab views")
    ap.add_argument("--trials", type=int, default=2, help="runs with and without the sessions each, alternating")
    ap.add_argument("--client-core", type=int, default=-2,
                    help="run the sessions on this CPU core and the server on the others, as if the visitors were on "
                         "their own machines (default: the last core on a machine with 4 or fewer; -1: share all cores)")
    ap.add_argument("--sessions-of", default="", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sessions_of:
        return sessions_main(args.sessions_of, args.sessions, args.period, args.tab_every, args.out, args.client_core)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ui_overhead import free_port, split_cores, train_once

    args.client_core = split_cores(args.client_core)

    from studio.config import RunConfig
    from studio.engine.trainers import quiet_libraries
    from studio.ui.app import build_app, launch_kwargs

    quiet_libraries()
    cfg = RunConfig.load(args.recipe)
    if args.model:
        cfg.model.name = args.model
    cfg.training.max_steps = args.steps
    cfg.data.max_rows = max(cfg.data.max_rows, args.steps * cfg.training.batch_size * 2)
    cfg.training.save_minutes = 0
    tmp = Path(tempfile.mkdtemp(prefix="load-"))
    os.environ["STUDIO_RUNS_DIR"] = str(tmp / "runs")

    demo = build_app()
    demo.queue(default_concurrency_limit=8)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
    url = f"http://127.0.0.1:{port}/"

    warm = RunConfig.from_dict(cfg.to_dict())
    warm.training.max_steps = 2
    print(f"warm-up run ({warm.model.name}) ...", flush=True)
    train_once(warm, tmp / "warm")

    results = {"loaded": [], "alone": []}
    runs_stats = []
    for trial in range(args.trials):
        for mode in (("alone", "loaded") if trial % 2 == 0 else ("loaded", "alone")):
            proc = None
            stats_file = tmp / f"sessions-{trial}.json"
            if mode == "loaded":
                proc = subprocess.Popen([sys.executable, __file__, "--sessions-of", url, "--sessions", str(args.sessions),
                                         "--period", str(args.period), "--tab-every", str(args.tab_every),
                                         "--client-core", str(args.client_core), "--out", str(stats_file)])
                time.sleep(3 + 0.1 * args.sessions)  # connected, page loaded, polling
            before = thread_cpu()
            if mode == "loaded" and os.environ.get("LOAD_PROFILE"):
                import yappi

                yappi.set_clock_type("cpu")
                yappi.start()
            tps, _ = train_once(cfg, tmp / "runs")
            if mode == "loaded":
                used = thread_cpu(before)
                if os.environ.get("LOAD_PROFILE"):
                    yappi.stop()
                    yappi.get_func_stats().sort("tsub").print_all(out=open(os.environ["LOAD_PROFILE"], "w"),
                        columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8), 4: ("tavg", 8)})
            if proc is not None:
                Path(str(stats_file) + ".stop").write_text("")
                proc.wait(120)
                runs_stats.append(json.loads(stats_file.read_text()))
            results[mode].append(tps)
            print(f"trial {trial + 1} {mode:>6}: {tps:7.1f} tokens/s", flush=True)
    demo.close()

    print("server threads' CPU during the last loaded run:")
    for name, sec in sorted(used.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {name:<40} {sec:6.1f} s")
    alone, loaded = statistics.median(results["alone"]), statistics.median(results["loaded"])
    drop = 100 * (alone - loaded) / alone
    calls = sum(s["calls"] for s in runs_stats)
    errors = [e for s in runs_stats for e in s["errors"]]
    latency = sorted(x for s in runs_stats for x in s["latency"])
    connected = min((s["sessions"] for s in runs_stats), default=0)
    print(f"\nalone: {alone:.1f} tokens/s ({', '.join(f'{x:.1f}' for x in results['alone'])})")
    print(f"with {args.sessions} sessions ({connected} connected in every run): {loaded:.1f} tokens/s "
          f"({', '.join(f'{x:.1f}' for x in results['loaded'])})")
    print(f"throughput drop: {drop:+.1f}% (target <= 10%)")
    if latency:
        print(f"live-key GETs: {sum(s.get('live_gets', 0) for s in runs_stats)}; gradio calls: {calls}, errors: {len(errors)} (target 0); latency median {1000 * latency[len(latency) // 2]:.0f} ms, "
              f"p95 {1000 * latency[int(0.95 * (len(latency) - 1))]:.0f} ms")
    for e in errors[:10]:
        print("  error:", e)


if __name__ == "__main__":
    main()
