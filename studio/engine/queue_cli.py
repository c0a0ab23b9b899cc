"""`studio queue [show | add CONFIG --models A,B | run | cancel ID | remove ID | clear | compare]`: the queue of
runs kept in the runs folder (studio.engine.queue), the same one the Train tab shows."""

from __future__ import annotations

import sys


def add_arguments(p) -> None:
    p.add_argument("action", nargs="?", default="show",
                   choices=("show", "add", "run", "cancel", "remove", "clear", "compare"),
                   help="show (default), add a config, run the queue to its end, cancel or remove an entry, "
                        "clear finished entries, compare the runs the queue trained")
    p.add_argument("target", nargs="?", help="the config YAML to add, or the entry id to cancel or remove")
    p.add_argument("--models", default="", help="with add: comma-separated models (catalog ids, folders or Hub ids)")
    p.add_argument("--max-steps", type=int, default=None, help="with add: override training.max_steps")


def _show() -> None:
    from studio.engine import queue

    q = queue.load()
    entries = q["entries"]
    if not entries:
        print("queue: empty")
        return
    print(f"queue: {'running' if q['active'] else 'paused'} ({queue.path()})")
    for e in entries:
        print(f"  {e['id']}  {e['status']:<10} {e['label']:<36} {e.get('run_dir') or ''}")


def run(args) -> int:
    from studio.config import RunConfig
    from studio.engine import queue
    from studio.errors import StudioError
    from studio.messages import Msg

    if args.action == "show":
        _show()
    elif args.action == "add":
        if not args.target:
            raise StudioError("queue.need_config")
        cfg = RunConfig.load(args.target)
        if args.max_steps is not None:
            cfg.training.max_steps = args.max_steps
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        for e in queue.add(cfg, models):
            print(f"added {e['id']}  {e['label']}")
    elif args.action in ("cancel", "remove"):
        if not args.target:
            raise StudioError("queue.need_id")
        print(getattr(queue, args.action)(args.target))
    elif args.action == "clear":
        print(f"removed {queue.clear_finished()} finished entries")
    elif args.action == "run":
        queue.run_all(on_event=lambda m: print(m, file=sys.stderr, flush=True))
        _show()
    elif args.action == "compare":
        from studio.evaluate import compare_runs

        facts = compare_runs.gather(queue.finished_runs())
        if not facts:
            print(Msg("queue.nothing_to_compare"))
            return 0
        headers, rows = compare_runs.table(facts)
        widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]
        for r in [headers] + rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        print(compare_runs.summary_line(facts))
    return 0
