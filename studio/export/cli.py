"""`studio export RUN_DIR [--adapter] [--zip] [--merge] [--gguf] [--card] [--push REPO_ID] [--out DIR] [--lang LANG]`.

With no choice of parts, it exports the adapter and the model card (the quick, small parts). The
rerun/ folder (config + accelerate config + commands) is always written. The Hub token comes from
HF_TOKEN (or `hf auth login`), never from the command line, where other users of the machine could
read it in the process list. Cards are written in --lang (English by default); the CLI speaks English.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.export.gguf import GGUF_TYPES
from studio.export.pipeline import default_out_dir, export_run
from studio.export.rerun import BACKENDS
from studio.messages import languages, say


def _help(name: str) -> str:
    return say(f"export.cli.help.{name}").replace("%", "%%")  # argparse formats help with %


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help=_help("run_dir"))
    parser.add_argument("--adapter", action="store_true", help=_help("adapter"))
    parser.add_argument("--zip", action="store_true", help=_help("zip"))
    parser.add_argument("--merge", action="store_true", help=_help("merge"))
    parser.add_argument("--gguf", action="store_true", help=_help("gguf"))
    parser.add_argument("--gguf-type", choices=GGUF_TYPES, nargs="+", default=["f16", "q8_0"], help=_help("gguf_type"))
    parser.add_argument("--no-parity", dest="parity", action="store_false", help=_help("no_parity"))
    parser.add_argument("--card", action="store_true", help=_help("card"))
    parser.add_argument("--push", metavar="REPO_ID", default=None, help=_help("push"))
    vis = parser.add_mutually_exclusive_group()
    vis.add_argument("--private", dest="private", action="store_true", default=True, help=_help("private"))
    vis.add_argument("--public", dest="private", action="store_false", help=_help("public"))
    parser.add_argument("--push-what", choices=("auto", "adapter", "merged"), default="auto", help=_help("push_what"))
    parser.add_argument("--out", metavar="DIR", default=None, help=_help("out"))
    parser.add_argument("--num-gpus", type=int, default=2, help=_help("num_gpus"))
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="fsdp", help=_help("backend"))
    parser.add_argument("--lang", choices=languages(), default="en", help=_help("lang"))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    chosen = args.adapter or args.zip or args.merge or args.gguf or args.card or args.push
    adapter = args.adapter or args.zip or not chosen
    card = args.card or not chosen or bool(args.push)
    out = Path(args.out) if args.out else default_out_dir(args.run_dir)

    bar = tqdm(total=1000, unit="", bar_format="{l_bar}{bar}| {elapsed}<{remaining}", dynamic_ncols=True)

    def progress(fraction: float, message) -> None:  # message: a Msg; the CLI speaks English
        bar.set_description_str(str(message)[:60])
        bar.n = int(fraction * 1000)
        bar.refresh()

    try:
        res = export_run(args.run_dir, out, adapter=adapter, zip=args.zip, merge=args.merge, card=card,
                         gguf=args.gguf, gguf_types=args.gguf_type, parity=args.parity, push_repo=args.push, private=args.private,
                         push_what=args.push_what, num_gpus=args.num_gpus, backend=args.backend, lang=args.lang,
                         progress=progress)
    finally:
        bar.close()
    for key, path in (("card", res.card), ("adapter", res.adapter_dir), ("zip", res.adapter_zip),
                      ("merged", res.merged_dir), *(("gguf", f) for f in res.gguf_files),
                      ("modelfile", res.modelfile)):
        if path:
            print(say(f"export.cli.wrote.{key}", path=path))
    for note in res.notes:
        print(note.text("en"))
    if res.rerun:
        print(say("export.cli.rerun", path=res.rerun.config))
        print(say("export.cli.rerun.one", command=f"(cd {res.out_dir} && {res.rerun.train_command})"))
        print(say("export.cli.rerun.many", n=max(args.num_gpus, 2),
                  command=f"(cd {res.out_dir} && {res.rerun.launch_command})"))
    if res.hub_url:
        print(say("export.cli.pushed", url=res.hub_url))
    print(res.out_dir)
    return 0
