"""`studio ui | train | queue | estimate | clean | eval | export`.

Each command lives in its own module, which exposes `add_arguments(parser)` and `run(args) -> int`;
this file only dispatches. A `StudioError` becomes one plain line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = {
    "ui": ("studio.ui.launch", "launch the browser app"),
    "train": ("studio.engine.cli", "train headless from a config YAML; prints the run folder last"),
    "estimate": ("studio.memory.cli", "estimate peak training memory and whether it fits"),
    "clean": ("studio.data.cli", "clean a data file into canonical JSONL with a report"),
    "queue": ("studio.engine.queue_cli", "show, fill and run the queue of runs (try several models)"),
    "eval": ("studio.evaluate.cli", "score base vs fine-tuned on the same rows"),
    "export": ("studio.export.cli", "export the adapter, a merged model, a model card; push to the Hub"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="studio", description="Fine-tuning Studio")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"studio: unknown command '{argv[0]}'. Commands: {', '.join(COMMANDS)}.", file=sys.stderr)
            return 2
        parser.print_help()
        return 0 if argv else 2

    name = argv[0]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    cmd = argparse.ArgumentParser(prog=f"studio {name}", description=help_text)
    module.add_arguments(cmd)
    args = cmd.parse_args(argv[1:])

    from studio.errors import StudioError, from_os_error

    try:
        return int(module.run(args) or 0)
    except StudioError as e:
        print(f"studio {name}: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk or an unwritable folder is a sentence too
        if (plain := from_os_error(e)) is None:
            raise
        print(f"studio {name}: {plain}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"studio {name}: interrupted.", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, but the user still gets one line; STUDIO_DEBUG=1 shows the traceback
        if os.environ.get("STUDIO_DEBUG"):
            raise
        print(f"studio {name}: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
