"""`studio export RUN_DIR [--adapter] [--zip] [--merge] [--gguf] [--card] [--push REPO_ID] [--out DIR]`.

With no choice of parts, it exports the adapter and the model card (the quick, small parts). The
rerun/ folder (config + accelerate config + commands) is always written. The Hub token comes from
HF_TOKEN (or `hf auth login`), never from the command line, where other users of the machine could
read it in the process list.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.export import BACKENDS, GGUF_TYPES, default_out_dir, export_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (runs/<run-id>)")
    parser.add_argument("--adapter", action="store_true", help="export the LoRA adapter folder (adapter/)")
    parser.add_argument("--zip", action="store_true", help="also zip the adapter folder (<run>-adapter.zip)")
    parser.add_argument("--merge", action="store_true",
                        help="fold the adapter into the base and save the merged model (merged/), in the base's dtype")
    parser.add_argument("--gguf", action="store_true",
                        help="also write the merged model as GGUF for llama.cpp / Ollama (Llama-architecture models)")
    parser.add_argument("--gguf-type", choices=GGUF_TYPES, default="f16", help="GGUF number format (default f16)")
    parser.add_argument("--card", action="store_true", help="write the model card (README.md)")
    parser.add_argument("--push", metavar="REPO_ID", default=None,
                        help="push to the Hugging Face Hub as this repo (token from HF_TOKEN)")
    vis = parser.add_mutually_exclusive_group()
    vis.add_argument("--private", dest="private", action="store_true", default=True,
                     help="make a new Hub repo private (the default)")
    vis.add_argument("--public", dest="private", action="store_false", help="make a new Hub repo public")
    parser.add_argument("--push-what", choices=("auto", "adapter", "merged"), default="auto",
                        help="what to push: the adapter (default when exported) or the merged model")
    parser.add_argument("--out", metavar="DIR", default=None, help="export folder (default RUN_DIR/export)")
    parser.add_argument("--num-gpus", type=int, default=2, help="GPUs for the accelerate launch command (default 2)")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="fsdp",
                        help="distributed backend for the launch command (default fsdp)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    chosen = args.adapter or args.zip or args.merge or args.gguf or args.card or args.push
    adapter = args.adapter or args.zip or not chosen
    card = args.card or not chosen or bool(args.push)
    out = Path(args.out) if args.out else default_out_dir(args.run_dir)

    bar = tqdm(total=1000, unit="", bar_format="{l_bar}{bar}| {elapsed}<{remaining}", dynamic_ncols=True)

    def progress(fraction: float, message: str) -> None:  # message: a Sentence; the CLI speaks English
        bar.set_description_str(getattr(message, "en", str(message))[:60])
        bar.n = int(fraction * 1000)
        bar.refresh()

    try:
        res = export_run(args.run_dir, out, adapter=adapter, zip=args.zip, merge=args.merge, card=card,
                         gguf=args.gguf, gguf_type=args.gguf_type, push_repo=args.push, private=args.private,
                         push_what=args.push_what, num_gpus=args.num_gpus, backend=args.backend, progress=progress)
    finally:
        bar.close()
    for label, path in (("model card", res.card), ("adapter", res.adapter_dir), ("adapter zip", res.adapter_zip),
                        ("merged model", res.merged_dir), ("GGUF", res.gguf_file)):
        if path:
            print(f"{label}: {path}")
    if res.rerun:
        print(f"re-run config: {res.rerun.config}")
        print(f"  one GPU:   (cd {res.out_dir} && {res.rerun.train_command})")
        print(f"  {max(args.num_gpus, 2)} GPUs:    (cd {res.out_dir} && {res.rerun.launch_command})")
    if res.hub_url:
        print(f"pushed: {res.hub_url}")
    print(res.out_dir)
    return 0
