"""rerun/ in an export: the run's exact config, the ready accelerate config for one distributed backend,
and COMMANDS.md with the commands that train it again on one GPU or many."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from studio.config import RunConfig
from studio.engine.runs import load_run_config
from studio.run_files import CONFIG
from studio.errors import StudioError
from studio.export.source import portable_config
from studio.messages import Msg, say
from studio.paths import PRESETS_DIR
from studio.files import atomic_write_text

ACCELERATE_DIR = PRESETS_DIR / "accelerate"
# backend name -> accelerate config file in presets/accelerate/; what each is for: `export.backend.<name>`
BACKENDS = {
    "ddp": "ddp.yaml",
    "fsdp": "fsdp.yaml",
    "deepspeed": "deepspeed.yaml",  # ZeRO-3
    "deepspeed-zero2": "deepspeed-zero2.yaml",
}


def backend_help(backend: str) -> Msg:
    return Msg(f"export.backend.{backend}")


def accelerate_config_path(backend: str) -> Path:
    if backend not in BACKENDS:
        raise StudioError("export.error.backend", backend=backend, choices=list(BACKENDS))
    return ACCELERATE_DIR / BACKENDS[backend]


def _shown(path: str | Path) -> str:
    """A path as a person would type it: relative to where they stand when that is shorter."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            pass
    return shlex.quote(str(p))


def train_command(config_path: str | Path) -> str:
    return f"studio train {_shown(config_path)}"


def launch_command(config_path: str | Path, num_gpus: int, backend: str = "fsdp",
                   accelerate_config: str | Path | None = None) -> str:
    """The command that trains CONFIG on `num_gpus` GPUs through Accelerate with the given backend
    (ddp, fsdp, deepspeed, deepspeed-zero2). One GPU needs no launcher: that is `studio train CONFIG`."""
    if int(num_gpus) < 1:
        raise StudioError("export.error.gpus")
    acc = accelerate_config if accelerate_config is not None else accelerate_config_path(backend)
    accelerate_config_path(backend)  # an unknown backend is refused even with a config file given
    if int(num_gpus) == 1:
        return train_command(config_path)
    return (f"accelerate launch --config_file {_shown(acc)} --num_processes {int(num_gpus)} "
            f"-m studio train {_shown(config_path)}")


@dataclass
class Rerun:
    folder: Path            # the rerun/ folder; commands are meant to be run from its parent
    config: Path
    accelerate_config: Path
    train_command: str
    launch_command: str
    yaml: str = ""


def commands_text(run_name: str, train: str, launch: str, n: int, backend: str, cpu_check: str,
                  lang: str = "en") -> str:
    """COMMANDS.md: the commands, each with the sentence that says when to use it."""
    return "\n".join([
        say("export.commands.title", lang, run=run_name), "",
        say("export.commands.where", lang), "",
        say("export.commands.one", lang), "", "```bash", train, "```", "",
        say("export.commands.many", lang, n=n, backend=backend, help=backend_help(backend)), "",
        "```bash", launch, "```", "",
        say("export.commands.cpu_check", lang), "", "```bash", cpu_check, "```", "",
        say("export.commands.cpu_trap", lang), ""])


def write_rerun(run_dir: str | Path, out_dir: str | Path, num_gpus: int = 2, backend: str = "fsdp",
                lang: str = "en") -> Rerun:
    """rerun/ in the export: the run's complete config, the ready accelerate config, and COMMANDS.md."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    folder = out_dir / "rerun"
    folder.mkdir(parents=True, exist_ok=True)
    # Loading resolves relative data paths against the run folder, so the copy works from anywhere.
    cfg = load_run_config(run_dir)
    config = folder / CONFIG
    cfg.save(config, header=say("export.rerun.header", lang, run=run_dir.name, config=config.name) + "\n")
    acc = folder / f"accelerate-{backend}.yaml"
    shutil.copyfile(accelerate_config_path(backend), acc)
    rel_config, rel_acc = Path("rerun") / config.name, Path("rerun") / acc.name
    train = f"studio train {rel_config}"
    n = max(int(num_gpus), 2)
    launch = launch_command(rel_config, n, backend, accelerate_config=rel_acc)
    cpu_check = launch_command(rel_config, 2, "ddp", accelerate_config=Path("rerun") / "accelerate-ddp.yaml")
    if backend != "ddp":
        shutil.copyfile(accelerate_config_path("ddp"), folder / "accelerate-ddp.yaml")
    atomic_write_text(folder / "COMMANDS.md", commands_text(run_dir.name, train, launch, n, backend, cpu_check, lang))
    return Rerun(folder=folder, config=config, accelerate_config=acc, train_command=train,
                 launch_command=launch, yaml=config.read_text(encoding="utf-8"))


def portable_rerun(rerun: Rerun, cfg: RunConfig, lang: str = "en") -> Path:
    """A copy of rerun/ for the Hub, with this machine's paths taken out of config.yaml."""
    folder = Path(tempfile.mkdtemp(prefix="studio-rerun-"))
    for f in rerun.folder.iterdir():
        if f.is_file() and f.name != CONFIG:
            shutil.copyfile(f, folder / f.name)
    portable_config(cfg).save(folder / CONFIG, header=say("export.rerun.portable_header", lang) + "\n")
    return folder


def accelerate_download(backend: str) -> str:
    """The backend's accelerate config under the name the commands use, in a temp folder Gradio serves.
    The same preset for every session (it holds nothing of anyone's), written only when it differs, and
    atomically: a session downloading it never reads a half-written copy."""
    target = Path(tempfile.gettempdir()) / "finetune-studio-downloads" / "accelerate" / f"accelerate-{backend}.yaml"
    content = accelerate_config_path(backend).read_text(encoding="utf-8")
    if not target.is_file() or target.read_text(encoding="utf-8") != content:
        atomic_write_text(target, content)
    return str(target)
