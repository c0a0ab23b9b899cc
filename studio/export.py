"""Export a finished run: the LoRA adapter (folder and zip), a merged model, a model card, the exact
config to re-run it (one GPU or many), a push to the Hugging Face Hub, and optionally a GGUF file.

Every function here is plain and takes a `progress(fraction, message)` callback where it can take a
while, so the Export tab wraps them with `gr.Progress` and the CLI with tqdm. The message is a `Sentence`:
English as a str (the CLI prints it), Chinese as `.zh` (the tab shows the reader's language). An export folder
(`<run>/export/` by default) looks like this; `adapter/` and `merged/` are each a Hub-ready repo:

    README.md              the model card
    adapter/               adapter_config.json, adapter_model.safetensors, tokenizer, chat template, README.md
    <run>-adapter.zip      adapter/ zipped, for a download button
    merged/                the adapter folded into the base: safetensors in the base's dtype, tokenizer, README.md
    <run>-f16.gguf         the merged model for llama.cpp / Ollama (Llama-architecture models only)
    rerun/                 config.yaml, accelerate-<backend>.yaml, COMMANDS.md

Hub tokens: passed in, used for the request, and never stored, logged, returned or put in a message.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from studio.config import EMBEDDED_MODEL, RunConfig
from studio.engine.runs import CONFIG, EVAL, VOTES, load_run_config, read_summary
from studio.errors import Sentence, StudioError
from studio.paths import PRESETS_DIR, atomic_write_text

Progress = Callable[[float, str], None]  # (fraction, message); the message is a Sentence

ACCELERATE_DIR = PRESETS_DIR / "accelerate"
# backend name -> accelerate config file in presets/accelerate/
BACKENDS = {
    "ddp": "ddp.yaml",
    "fsdp": "fsdp.yaml",
    "deepspeed": "deepspeed.yaml",  # ZeRO-3
    "deepspeed-zero2": "deepspeed-zero2.yaml",
}
BACKEND_HELP = {
    "ddp": "Each GPU holds the whole model (fastest when the model fits on one GPU).",
    "fsdp": "PyTorch FSDP: the model is split across the GPUs (for models too big for one GPU).",
    "deepspeed": "DeepSpeed ZeRO-3: the model is split across the GPUs (needs `pip install deepspeed`).",
    "deepspeed-zero2": "DeepSpeed ZeRO-2: optimizer states split, model whole on each GPU (LoRA/QLoRA).",
}
# Files a training run may leave in adapter/ that do not belong in an export: training_args.bin is a
# pickle of TrainingArguments (a hub_token field lives there) and the rest are trainer state.
_SKIP_IN_ADAPTER = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"}


def _noop(fraction: float, message: str) -> None:
    pass


# ---- small readers ---------------------------------------------------------------------------

def base_model_id(cfg: RunConfig) -> str | None:
    """The base model's Hub id, when there is one (for the card's `base_model` and the adapter's config)."""
    name = (cfg.model.name or EMBEDDED_MODEL).strip()
    if name == EMBEDDED_MODEL:
        from studio.models.loading import EMBEDDED_HUB_ID

        return EMBEDDED_HUB_ID
    try:
        from studio.models.catalog import find

        entry = find(name)
        if entry is not None:
            return getattr(entry, "hub_id", None) or None
    except ImportError:
        pass
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        return None  # a local folder: no Hub id to point at
    return name if name.count("/") == 1 else None


def base_dtype(cfg: RunConfig):
    """The torch dtype the base model is stored in (config.json `dtype`, or `torch_dtype` in older files)."""
    import torch

    from studio.models.loading import resolve

    source = resolve(cfg.model.name)
    value = None
    local = Path(source) / "config.json"
    if local.is_file():
        d = json.loads(local.read_text(encoding="utf-8"))
        value = d.get("dtype") or d.get("torch_dtype")
    else:  # a Hub id: config.json only, never the weights
        try:
            from transformers import AutoConfig

            c = AutoConfig.from_pretrained(source, revision=cfg.model.revision or None,
                                           trust_remote_code=cfg.model.trust_remote_code)
            value = getattr(c, "dtype", None) or getattr(c, "torch_dtype", None)
        except Exception:
            value = None
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and value not in ("auto", ""):
        dt = getattr(torch, value.replace("torch.", ""), None)
        if isinstance(dt, torch.dtype):
            return dt
    return torch.float32  # unknown: float32 loses nothing


def _count_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def _data_format(path: Path) -> str:
    """A plain name for the canonical format of a data/ file, from its first row."""
    if not path.is_file():
        return "unknown"
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                return "unknown"
            if "messages" in row:
                turns = sum(1 for m in row["messages"] if m.get("role") == "assistant")
                return "conversations (messages)" if turns > 1 else "instructions (messages)"
            if {"prompt", "chosen", "rejected"} <= set(row):
                return "preference pairs (prompt, chosen, rejected)"
            if "text" in row:
                return "plain text"
            return "unknown"
    return "unknown"


def data_summary(run_dir: str | Path) -> dict:
    """Rows and format of the data the run trained on (its data/ folder), plus summary.json's counts."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    train, evalf = run_dir / "data" / "train.jsonl", run_dir / "data" / "eval.jsonl"
    return {
        "format": summary.get("data_format") or _data_format(train),
        "train_rows": summary.get("train_rows") or _count_rows(train),
        "eval_rows": summary.get("eval_rows") or _count_rows(evalf),
    }


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


# ---- blind test ------------------------------------------------------------------------------

def blind_test(run_dir: str | Path):
    """(Tally, RatingSummary) of the run's votes.jsonl, counted by studio.evaluate (one truth for the
    Compare tab and the card): fine-tuned wins, base wins, ties and both-bad, with a Wilson interval."""
    from studio.evaluate.tally import rating_summary, tally
    from studio.evaluate.votes import read_records

    records = read_records(Path(run_dir) / VOTES)
    return tally(records), rating_summary(records)


# ---- the model card --------------------------------------------------------------------------

_LOWER_IS_BETTER = {"perplexity", "loss", "eval_loss", "ppl"}


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def portable_config(cfg: RunConfig) -> RunConfig:
    """The run config with this machine's paths taken out, for a card or a Hub repo: data files become
    `data/<name>` (the data itself is never published) and a local base folder becomes its Hub id."""
    d = cfg.to_dict()
    for key in ("train_file", "eval_file"):
        if d["data"][key]:
            d["data"][key] = f"data/{Path(d['data'][key]).name}"
    hub = base_model_id(cfg)
    if hub and d["model"]["name"] != EMBEDDED_MODEL:
        d["model"]["name"] = hub
    elif not hub:
        d["model"]["name"] = Path(d["model"]["name"]).name
    return RunConfig.from_dict(d)


def model_card(run_dir: str | Path, kind: str = "adapter", *, num_gpus: int = 2, backend: str = "fsdp") -> str:
    """README.md text for an exported adapter (`kind="adapter"`) or merged model (`kind="merged"`)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    summary = read_summary(run_dir)
    data = data_summary(run_dir)
    evals = _read_json(run_dir / EVAL)
    tally, ratings = blind_test(run_dir)
    base = base_model_id(cfg)
    base_label = base or Path(cfg.model.name).name
    m, t = cfg.method, cfg.training
    is_lora = m.method in ("lora", "qlora") and kind == "adapter"

    front = {}
    if base:
        front["base_model"] = base
    front["library_name"] = "peft" if is_lora else "transformers"
    front["pipeline_tag"] = "text-generation"
    tags = ["fine-tuning-studio", t.stage, m.method, "lora" if m.method in ("lora", "qlora") else ""]
    tags += ["merged"] if kind == "merged" else []
    front["tags"] = list(dict.fromkeys(x for x in tags if x))
    title = cfg.name or run_dir.name
    what = {"adapter": "A LoRA adapter" if m.method != "qlora" else "A QLoRA adapter",
            "merged": "A fine-tuned model (the LoRA adapter merged into its base)" if m.method != "full"
            else "A fully fine-tuned model"}[kind]
    base_link = f"[{base}](https://huggingface.co/{base})" if base else f"`{base_label}` (a local model)"
    stage_words = {"sft": "supervised fine-tuning (SFT) on instruction/conversation data",
                   "cpt": "continued pre-training (CPT) on plain text",
                   "dpo": "direct preference optimisation (DPO) on chosen/rejected pairs"}.get(t.stage, t.stage)

    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {title}", "",
             f"{what} for {base_link}, trained with Fine-tuning Studio by {stage_words}.", ""]

    lines += ["## Data", "",
              f"- Format: {data['format']}",
              f"- Training rows: {_fmt(data['train_rows'])}",
              f"- Validation rows: {_fmt(data['eval_rows'])}", ""]

    hp = [("Stage", t.stage), ("Method", m.method)]
    if m.method in ("lora", "qlora"):
        hp += [("LoRA rank", m.lora_rank), ("LoRA alpha", m.lora_alpha), ("LoRA dropout", m.lora_dropout),
               ("Target modules", m.target_modules)]
    if m.method == "qlora":
        hp.append(("Quantization", f"{m.quant_bits}-bit"))
    hp += [("Epochs", t.epochs), ("Max steps", t.max_steps or "all"), ("Learning rate", t.learning_rate),
           ("Scheduler", f"{t.scheduler}, warmup {t.warmup_ratio:g}"),
           ("Batch size", f"{t.batch_size} x {t.grad_accum} accumulation = {t.batch_size * t.grad_accum} per step"
            + (f" per process, {summary['world_size']} processes" if (summary.get("world_size") or 1) > 1 else "")),
           ("Max length (tokens)", t.max_length), ("Precision", t.precision), ("Seed", t.seed)]
    if t.stage == "dpo":
        hp.append(("DPO beta", t.dpo_beta))
    lines += ["## Method and hyperparameters", "", "| Setting | Value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in hp]
    facts = [("Steps", summary.get("steps")), ("Training time (s)", summary.get("duration_s")),
             ("Final training loss", summary.get("train_loss")), ("Final validation loss", summary.get("eval_loss")),
             ("Trainable parameters", summary.get("trainable_params")), ("Processes", summary.get("world_size"))]
    if summary.get("peak_memory_bytes"):
        facts.append(("Peak memory (GiB)", summary["peak_memory_bytes"] / 2**30))
    facts = [(k, v) for k, v in facts if v is not None]
    if facts:
        lines += ["", "| Training | Value |", "| --- | --- |"] + [f"| {k} | {_fmt(v)} |" for k, v in facts]
    lines.append("")

    lines += ["## Results", ""]
    before, after = evals.get("base") or {}, evals.get("finetuned") or {}
    shared = [k for k in before if k in after and isinstance(before[k], (int, float)) and isinstance(after[k], (int, float))]
    if shared:
        lines += ["Automatic checks on the validation set, the base model before and the fine-tuned model after:", "",
                  "| Metric | Base | Fine-tuned | Better is |", "| --- | --- | --- | --- |"]
        lines += [f"| {k} | {_fmt(before[k])} | {_fmt(after[k])} | {'lower' if k in _LOWER_IS_BETTER else 'higher'} |"
                  for k in shared]
        lines.append("")
    else:
        lines += ["No automatic before/after checks were run (`studio eval RUN_DIR --data FILE` adds them).", ""]
    if tally.total:
        lines += [f"Blind A/B test: people compared the base and the fine-tuned answers to the same prompts without "
                  f"knowing which was which. Over {tally.total} votes from {tally.voters} "
                  f"{'person' if tally.voters == 1 else 'people'}, the fine-tuned model won {tally.finetuned_wins}, "
                  f"the base won {tally.base_wins}, {tally.ties} were ties and {tally.both_bad} both bad. "
                  + tally.sentence("en"), ""]
    else:
        lines += ["No blind A/B votes were recorded for this run.", ""]
    if ratings.n:
        lines += [ratings.sentence("en"), ""]

    lines += ["## How to use", "", "```python"]
    repo = "YOUR-NAME/THIS-REPO"
    if is_lora:
        lines += ["from peft import AutoPeftModelForCausalLM",
                  "from transformers import AutoTokenizer", "",
                  f'model = AutoPeftModelForCausalLM.from_pretrained("{repo}")',
                  f'tokenizer = AutoTokenizer.from_pretrained("{repo}")']
    else:
        lines += ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  f'model = AutoModelForCausalLM.from_pretrained("{repo}")',
                  f'tokenizer = AutoTokenizer.from_pretrained("{repo}")']
    lines += ['messages = [{"role": "user", "content": "Your question"}]',
              "ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\")",
              "print(tokenizer.decode(model.generate(ids, max_new_tokens=200)[0][ids.shape[1]:], skip_special_tokens=True))",
              "```", ""]

    portable = portable_config(cfg)
    lines += ["## Re-run it", "",
              "The exact settings, with the data files at `data/` (the data itself is not published):", "",
              "```yaml", portable.to_yaml().rstrip(), "```", "",
              "From the folder that holds `rerun/` (this repository, or the export folder), on one GPU or a CPU:", "",
              "```bash", train_command("rerun/config.yaml"), "```", "",
              f"On {max(num_gpus, 2)} GPUs ({backend}: {BACKEND_HELP[backend]}):", "", "```bash",
              launch_command("rerun/config.yaml", max(num_gpus, 2), backend,
                             accelerate_config=f"rerun/accelerate-{backend}.yaml"),
              "```", ""]

    lines += ["## Intended use and limits", "",
              f"- Made for the task its training data shows ({data['format']}, {_fmt(data['train_rows'])} rows). "
              "Outside that task it is no better than its base model, and may be worse.",
              "- It can state wrong things with confidence. Check its answers before relying on them, and have a person "
              "review anything medical, legal or financial.",
              "- A small dataset teaches style and format more than new knowledge; facts it never saw it may invent.",
              f"- It inherits the licence, biases and limits of {base_label}; read the base model's card.", ""]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path, folder: str | Path, kind: str = "adapter", **kw) -> Path:
    path = Path(folder) / "README.md"
    atomic_write_text(path, model_card(run_dir, kind, **kw))
    return path


# ---- re-run: config and launch commands ------------------------------------------------------

def accelerate_config_path(backend: str) -> Path:
    if backend not in BACKENDS:
        raise StudioError(f"Unknown distributed backend '{backend}'. Choose one of: {', '.join(BACKENDS)}.",
                          f"未知的分布式后端“{backend}”。请从以下选择：{'、'.join(BACKENDS)}。")
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


def launch_command(config_path: str | Path, num_gpus: int, backend: str = "fsdp",
                   accelerate_config: str | Path | None = None) -> str:
    """The command that trains CONFIG on `num_gpus` GPUs through Accelerate with the given backend
    (ddp, fsdp, deepspeed, deepspeed-zero2). One GPU needs no launcher: that is `studio train CONFIG`."""
    if int(num_gpus) < 1:
        raise StudioError("The number of GPUs must be at least 1.", "GPU 数量至少为 1。")
    acc = accelerate_config if accelerate_config is not None else accelerate_config_path(backend)
    if backend not in BACKENDS:
        raise StudioError(f"Unknown distributed backend '{backend}'. Choose one of: {', '.join(BACKENDS)}.",
                          f"未知的分布式后端“{backend}”。请从以下选择：{'、'.join(BACKENDS)}。")
    if int(num_gpus) == 1:
        return train_command(config_path)
    return (f"accelerate launch --config_file {_shown(acc)} --num_processes {int(num_gpus)} "
            f"-m studio train {_shown(config_path)}")


def train_command(config_path: str | Path) -> str:
    return f"studio train {_shown(config_path)}"


@dataclass
class Rerun:
    folder: Path            # the rerun/ folder; commands are meant to be run from its parent
    config: Path
    accelerate_config: Path
    train_command: str
    launch_command: str
    yaml: str = ""


def write_rerun(run_dir: str | Path, out_dir: str | Path, num_gpus: int = 2, backend: str = "fsdp") -> Rerun:
    """rerun/ in the export: the run's complete config, the ready accelerate config, and COMMANDS.md."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    folder = out_dir / "rerun"
    folder.mkdir(parents=True, exist_ok=True)
    # Loading resolves relative data paths against the run folder, so the copy works from anywhere.
    cfg = load_run_config(run_dir)
    config = folder / CONFIG
    cfg.save(config, header=f"# Re-run of {run_dir.name}: studio train {config.name}\n")
    acc_src = accelerate_config_path(backend)
    acc = folder / f"accelerate-{backend}.yaml"
    shutil.copyfile(acc_src, acc)
    rel_config, rel_acc = Path("rerun") / config.name, Path("rerun") / acc.name
    train = f"studio train {rel_config}"
    n = max(int(num_gpus), 2)
    launch = launch_command(rel_config, n, backend, accelerate_config=rel_acc)
    text = "\n".join([
        f"# Re-run {run_dir.name}", "",
        "Run these from the export folder (the one holding `rerun/`).", "",
        "One GPU, Apple silicon or a CPU:", "", "```bash", train, "```", "",
        f"{n} GPUs on one machine ({backend}: {BACKEND_HELP[backend]}). Change `--num_processes` to your number "
        "of GPUs:", "", "```bash", launch, "```", "",
        "Test the same command on a machine without GPUs with two CPU processes (DDP over gloo):", "", "```bash",
        launch_command(rel_config, 2, "ddp", accelerate_config=Path("rerun") / "accelerate-ddp.yaml"), "```", "",
        "(`accelerate launch --cpu --num_processes 2` would silently start a single process.)", ""])
    if backend != "ddp":
        shutil.copyfile(accelerate_config_path("ddp"), folder / "accelerate-ddp.yaml")
    atomic_write_text(folder / "COMMANDS.md", text)
    return Rerun(folder=folder, config=config, accelerate_config=acc, train_command=train,
                 launch_command=launch, yaml=config.read_text(encoding="utf-8"))


# ---- adapter ---------------------------------------------------------------------------------

def _run_tokenizer(run_dir: Path, cfg: RunConfig):
    """The tokenizer the run trained with: the one saved beside the adapter (it holds the chat template
    used in training), else the base model's with the studio's fallback template."""
    from transformers import AutoTokenizer

    from studio.models.chat import ensure_chat_template
    from studio.models.loading import load_tokenizer

    for folder in (run_dir / "adapter", run_dir / "model"):
        if (folder / "tokenizer_config.json").is_file():
            tok = AutoTokenizer.from_pretrained(folder)
            break
    else:
        tok = load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code, revision=cfg.model.revision)
    ensure_chat_template(tok)
    return tok


def _fresh(target: Path) -> Path:
    """A temporary sibling folder that becomes `target` with _commit: a reader never sees half a folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))


def _commit(tmp: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def export_adapter(run_dir: str | Path, out_dir: str | Path, progress: Progress | None = None) -> Path:
    """out_dir/adapter/: the run's PEFT adapter with its tokenizer and chat template, ready to load with
    `PeftModel.from_pretrained` or `AutoPeftModelForCausalLM`, and to push. Returns the folder."""
    progress = progress or _noop
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    src = run_dir / "adapter"
    if not (src / "adapter_config.json").is_file():
        if (run_dir / "model" / "config.json").is_file():
            raise StudioError("This run fine-tuned the whole model, so it has no adapter: export the merged model instead.",
                              "这次训练微调的是整个模型，所以没有适配器：请改为导出合并后的模型。")
        raise StudioError(f"The run {run_dir.name} has no adapter yet: train it first (or wait until it finishes).",
                          f"训练 {run_dir.name} 还没有适配器：请先训练（或等训练结束）。")
    progress(0.1, Sentence("Copying the adapter", "正在复制适配器"))
    target = Path(out_dir) / "adapter"
    tmp = _fresh(target)
    try:
        for f in src.iterdir():
            if f.is_file() and f.name not in _SKIP_IN_ADAPTER:
                shutil.copy2(f, tmp / f.name)
        # Point the adapter at the base on the Hub (not this machine's cache folder) so that it loads
        # anywhere; a local base folder has no such name, so it stays as it is.
        hub = base_model_id(cfg)
        if hub:
            ac = json.loads((tmp / "adapter_config.json").read_text(encoding="utf-8"))
            ac["base_model_name_or_path"] = hub
            (tmp / "adapter_config.json").write_text(json.dumps(ac, indent=2) + "\n", encoding="utf-8")
        if not (tmp / "tokenizer_config.json").is_file():
            progress(0.5, Sentence("Adding the tokenizer and chat template", "正在加入分词器和对话模板"))
            _run_tokenizer(run_dir, cfg).save_pretrained(tmp)
        progress(0.8, Sentence("Writing the model card", "正在写模型卡"))
        write_model_card(run_dir, tmp, "adapter")
        _commit(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress(1.0, Sentence("Adapter exported", "适配器已导出"))
    return target


def zip_folder(folder: str | Path, zip_path: str | Path) -> Path:
    """A zip of `folder` whose entries sit under the folder's name (unzips to one folder, not a spill)."""
    folder, zip_path = Path(folder), Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, Path(zip_path.stem) / f.relative_to(folder))
    os.replace(tmp, zip_path)
    return zip_path


def zip_adapter(run_dir: str | Path, out_dir: str | Path, progress: Progress | None = None) -> Path:
    """out_dir/<run>-adapter.zip (exporting the adapter folder first if needed), for a download button."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    adapter = out_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        export_adapter(run_dir, out_dir, progress)
    return zip_folder(adapter, out_dir / f"{run_dir.name}-adapter.zip")


# ---- merged model ----------------------------------------------------------------------------

def merge_model(run_dir: str | Path, out_dir: str | Path, progress: Progress | None = None,
                device: str | None = None) -> Path:
    """out_dir/merged/: the adapter folded into the base weights (`merge_and_unload`), saved as
    safetensors in the base's dtype with the tokenizer and chat template. On the GPU when there is
    one, else on the CPU. A full fine-tuning run's model/ is saved the same way. Returns the folder."""
    import torch

    from studio.models.loading import check_safetensors, load_model

    progress = progress or _noop
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    adapter, full = run_dir / "adapter", run_dir / "model"
    if not (adapter / "adapter_config.json").is_file() and not (full / "config.json").is_file():
        raise StudioError(f"The run {run_dir.name} has no trained model yet (no adapter/ or model/ folder).",
                          f"训练 {run_dir.name} 还没有训练好的模型（没有 adapter/ 或 model/ 文件夹）。")
    # A QLoRA run trained on a 4-bit base; the base is loaded here unquantized, in its own dtype, so
    # the merged weights are not rounded to 4 bits.
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = base_dtype(cfg)
    target = Path(out_dir) / "merged"
    tok = _run_tokenizer(run_dir, cfg)
    dtype_name = str(dtype).replace("torch.", "")
    try:
        if (adapter / "adapter_config.json").is_file():
            from peft import PeftModel

            check_safetensors(adapter, "adapter")  # PEFT would fall back to unpickling adapter_model.bin
            where = device.upper()
            progress(0.05, Sentence(f"Loading the base model ({dtype_name}) on the {where}",
                                    f"正在 {where} 上加载基座模型（{dtype_name}）"))
            model = load_model(cfg.model.name, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code,
                               revision=cfg.model.revision)
            # Training may have added tokens (a pad token): the adapter then carries the resized embeddings.
            if len(tok) > model.get_input_embeddings().num_embeddings:
                model.resize_token_embeddings(len(tok))
            model.to(device)
            progress(0.45, Sentence("Adding the adapter", "正在加入适配器"))
            model = PeftModel.from_pretrained(model, str(adapter))
            progress(0.55, Sentence("Folding the adapter into the base weights", "正在把适配器合并进基座权重"))
            # safe_merge checks the merged weights for NaNs before replacing the originals.
            model = model.merge_and_unload(safe_merge=True)
        else:
            progress(0.05, Sentence("Loading the fine-tuned model", "正在加载微调后的模型"))
            model = load_model(str(full), dtype=dtype)
            model.to(device)
    except (torch.OutOfMemoryError, MemoryError):
        raise StudioError("Not enough memory to merge this model here. Merge it on a machine with more memory "
                          "(or a GPU), or use the adapter with its base model instead.",
                          "这里的内存不够合并这个模型。请在内存更大（或有 GPU）的机器上合并，"
                          "或者直接把适配器和它的基座模型一起使用。") from None
    model.eval()
    progress(0.7, Sentence(f"Saving safetensors ({dtype_name})", f"正在保存 safetensors（{dtype_name}）"))
    tmp = _fresh(target)
    try:
        model.save_pretrained(tmp, safe_serialization=True, max_shard_size="2GB")
        progress(0.9, Sentence("Saving the tokenizer and chat template", "正在保存分词器和对话模板"))
        tok.save_pretrained(tmp)
        write_model_card(run_dir, tmp, "merged")
        _commit(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    del model
    progress(1.0, Sentence("Merged model saved", "合并后的模型已保存"))
    return target


# ---- Hugging Face Hub ------------------------------------------------------------------------

def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _hub_error(e: Exception, repo_id: str, token: str | None) -> StudioError:
    """One plain sentence for a failed push; never the token, never a traceback."""
    name = type(e).__name__
    text = _scrub(f"{name}: {e}", token)
    status = getattr(getattr(e, "response", None), "status_code", None)
    offline = ("ConnectError", "ConnectTimeout", "NetworkError", "OfflineModeIsEnabled", "ProxyError",
               "RemoteProtocolError", "ReadTimeout", "TimeoutException", "gaierror")
    if (name in offline or isinstance(e, (ConnectionError, TimeoutError))
            or any(m in text for m in ("Name or service not known", "Connection refused", "offline mode"))):
        return StudioError("Could not reach the Hugging Face Hub: this machine seems to be offline. "
                           "The export is saved locally; push it again when you are online.",
                           "连不上 Hugging Face Hub：这台机器似乎没有联网。导出的文件已保存在本地；联网后再推送一次即可。")
    if status == 401:
        return StudioError("The Hugging Face Hub did not accept the token. Check it, and that it is a token with write access.",
                           "Hugging Face Hub 不接受这个令牌。请检查它是否正确，并确认它有写入权限。")
    if status == 403:
        return StudioError(f"The token may not write to '{repo_id}'. Use a token with write access to that account "
                           "or organisation.",
                           f"这个令牌没有写入“{repo_id}”的权限。请使用对该账号或组织有写入权限的令牌。")
    if status in (400, 422) or "Invalid repo" in text or "HFValidationError" in name:
        return StudioError(f"'{repo_id}' is not a valid Hub repository name: use NAME or OWNER/NAME, with letters, "
                           "digits, '-', '_' and '.'.",
                           f"“{repo_id}”不是有效的 Hub 仓库名：请用 NAME 或 OWNER/NAME 的形式，只含字母、数字、"
                           "“-”、“_”和“.”。")
    first = text.splitlines()[0] if text else name
    return StudioError(f"The push to the Hugging Face Hub failed: {first}", f"推送到 Hugging Face Hub 失败：{first}")


def _hub_files(folder: Path, extra: dict[str, Path]) -> list[tuple[str, Path]]:
    files = [(str(f.relative_to(folder)), f) for f in sorted(folder.rglob("*")) if f.is_file()]
    for prefix, sub in extra.items():
        if sub.is_dir():
            files += [(f"{prefix}/{f.relative_to(sub)}", f) for f in sorted(sub.rglob("*")) if f.is_file()]
    return files


def push_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool = True,
                extra: dict[str, str | Path] | None = None, progress: Progress | None = None,
                endpoint: str | None = None, commit_message: str = "Upload from Fine-tuning Studio") -> str:
    """Create (or reuse) the model repo `repo_id` and upload `folder` to it in one commit; `extra` maps
    a folder in the repo to a local folder to add beside it (e.g. {"rerun": ".../rerun"}). Private by
    default. The token comes from the argument, else HF_TOKEN (or a `hf auth login`), and goes only
    into the request's Authorization header. Returns the repo's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    progress = progress or _noop
    folder = Path(folder)
    repo_id = (repo_id or "").strip()
    if not repo_id:
        raise StudioError("Name the Hub repository to push to, for example your-name/my-model.",
                          "请填写要推送到的 Hub 仓库名，例如 your-name/my-model。")
    if not folder.is_dir():
        raise StudioError(f"There is nothing to push at {folder}: export the adapter or the merged model first.",
                          f"{folder} 处没有可以推送的内容：请先导出适配器或合并后的模型。")
    from studio.space import on_space

    # On a public Space, HF_TOKEN is the Space owner's secret: a visitor must type their own token.
    if on_space() and not (token or "").strip():
        raise StudioError("On a shared Space, type your own Hugging Face token to push (it is used once and not kept).",
                          "在共享的 Space 上推送，请输入你自己的 Hugging Face 令牌（只用这一次，不会保存）。")
    token = (token or "").strip() or get_token()
    if not token:
        raise StudioError("No Hugging Face token: type one in, or set the HF_TOKEN environment variable. "
                          "It needs write access.",
                          "没有 Hugging Face 令牌：请输入一个，或设置环境变量 HF_TOKEN。令牌需要有写入权限。")
    # HF_ENDPOINT is read by huggingface_hub once at import; read it again so a mirror set later applies.
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    error = None
    try:
        progress(0.05, Sentence(f"Creating the {'private' if private else 'public'} repository {repo_id}",
                                f"正在创建{'私有' if private else '公开'}仓库 {repo_id}"))
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        repo_id = url.repo_id or repo_id  # "name" alone gets the account's namespace
        files = _hub_files(folder, {k: Path(v) for k, v in (extra or {}).items()})
        size = sum(f.stat().st_size for _, f in files)
        progress(0.2, Sentence(f"Uploading {len(files)} files ({size / 2**20:.1f} MB)",
                               f"正在上传 {len(files)} 个文件（{size / 2**20:.1f} MB）"))
        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in files]
        api.create_commit(repo_id, operations=ops, commit_message=commit_message, repo_type="model")
    except Exception as e:  # noqa: BLE001 -- every failure becomes one sentence, scrubbed of the token
        error = _hub_error(e, repo_id, token)
    if error is not None:
        # Raised outside the except block: the HTTP error (whose request holds the Authorization
        # header) is then not even attached as __context__ for a logger to print.
        raise error
    progress(1.0, Sentence("Pushed to the Hub", "已推送到 Hugging Face Hub"))
    return f"{api.endpoint.rstrip('/')}/{repo_id}"


# ---- the whole export ------------------------------------------------------------------------

@dataclass
class ExportResult:
    out_dir: Path
    card: Path | None = None
    adapter_dir: Path | None = None
    adapter_zip: Path | None = None
    merged_dir: Path | None = None
    gguf_file: Path | None = None
    rerun: Rerun | None = None
    hub_url: str | None = None
    notes: list[str] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return [p for p in (self.card, self.adapter_dir, self.adapter_zip, self.merged_dir, self.gguf_file,
                            self.rerun.folder if self.rerun else None) if p is not None]


def default_out_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "export"


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, *, adapter: bool = True, zip: bool = False,
               merge: bool = False, card: bool = True, gguf: bool = False, gguf_type: str = "f16",
               push_repo: str | None = None, private: bool = True, token: str | None = None,
               push_what: str = "auto", num_gpus: int = 2, backend: str = "fsdp",
               progress: Progress | None = None) -> ExportResult:
    """Everything the Export tab or `studio export` asks for, in order, with one progress bar over all
    of it. The rerun/ folder is always written (it is small and is the point of an export)."""
    progress = progress or _noop
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    out = Path(out_dir) if out_dir else default_out_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    is_full = cfg.method.method == "full" or (
        not (run_dir / "adapter" / "adapter_config.json").is_file() and (run_dir / "model" / "config.json").is_file())
    if is_full and (adapter or zip):
        adapter = zip = False
        merge = True
    merge = merge or gguf
    res = ExportResult(out_dir=out)
    steps = [s for s, on in (("card", card), ("adapter", adapter or zip), ("zip", zip), ("merge", merge),
                             ("gguf", gguf), ("rerun", True), ("push", bool(push_repo))) if on]
    weights = {"card": 1, "adapter": 1, "zip": 1, "merge": 6, "gguf": 4, "rerun": 1, "push": 4}
    total = sum(weights[s] for s in steps)
    done = 0.0

    def sub(step: str) -> Progress:
        start, span = done / total, weights[step] / total
        return lambda f, msg: progress(min(1.0, start + span * max(0.0, min(1.0, f))), msg)

    for step in steps:
        p = sub(step)
        if step == "card":
            res.card = write_model_card(run_dir, out, "merged" if is_full else "adapter",
                                        num_gpus=num_gpus, backend=backend)
            p(1.0, Sentence("Model card written", "模型卡已写好"))
        elif step == "adapter":
            res.adapter_dir = export_adapter(run_dir, out, p)
        elif step == "zip":
            res.adapter_zip = zip_folder(res.adapter_dir, out / f"{run_dir.name}-adapter.zip")
            p(1.0, Sentence("Adapter zipped", "适配器已打包成 zip"))
        elif step == "merge":
            res.merged_dir = merge_model(run_dir, out, p)
        elif step == "gguf":
            res.gguf_file = export_gguf(res.merged_dir, out / f"{run_dir.name}-{gguf_type}.gguf", gguf_type, p)
        elif step == "rerun":
            res.rerun = write_rerun(run_dir, out, num_gpus, backend)
            p(1.0, Sentence("Re-run config written", "重新训练用的配置已写好"))
        elif step == "push":
            what = push_what if push_what != "auto" else ("adapter" if res.adapter_dir else "merged")
            folder = res.adapter_dir if what == "adapter" else res.merged_dir
            if folder is None:
                folder = (export_adapter(run_dir, out) if what == "adapter" else merge_model(run_dir, out))
            portable = _portable_rerun(res.rerun, cfg)
            try:
                res.hub_url = push_to_hub(folder, push_repo, token=token, private=private,
                                          extra={"rerun": portable}, progress=p)
            finally:
                shutil.rmtree(portable, ignore_errors=True)
        done += weights[step]
    progress(1.0, Sentence("Export finished", "导出完成"))
    return res


def _portable_rerun(rerun: Rerun, cfg: RunConfig) -> Path:
    """A copy of rerun/ for the Hub, with this machine's paths taken out of config.yaml."""
    folder = Path(tempfile.mkdtemp(prefix="studio-rerun-"))
    for f in rerun.folder.iterdir():
        if f.is_file() and f.name != CONFIG:
            shutil.copyfile(f, folder / f.name)
    portable_config(cfg).save(folder / CONFIG, header="# Put your training data at data/train.jsonl "
                              "(and data/eval.jsonl), then: studio train rerun/config.yaml\n")
    return folder


# ---- GGUF ------------------------------------------------------------------------------------
# transformers reads GGUF but does not write it, and llama.cpp's converter (convert_hf_to_gguf.py) is
# not in the `gguf` package. For the Llama architecture (Llama 2/3, SmolLM, TinyLlama, ...) with a
# byte-level BPE tokenizer, the `gguf` package has every piece: the writer, the tensor-name map, the
# metadata keys and the special-token reader. What is left is llama.cpp's Q/K row permutation and
# picking the pre-tokenizer name, done below the way convert_hf_to_gguf.py does them. Anything else
# (other architectures, sentencepiece vocabularies, unusual RoPE scaling) is refused with a sentence
# rather than written half right.

GGUF_TYPES = ("f16", "f32")

# The split regex of Llama 3's tokenizer.json (llama.cpp calls this pre-tokenizer "llama-bpe").
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _gguf_pre_tokenizer(tokenizer_json: dict) -> str | None:
    """llama.cpp's name for how this byte-level BPE tokenizer splits text before merging, or None
    when it is not one we can name with certainty."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"  # GPT-2's split after cutting numbers into single digits
    if (kinds == ["Split", "ByteLevel"] and (parts[0].get("pattern") or {}).get("Regex") == _LLAMA3_SPLIT
            and not parts[1].get("use_regex", True)):
        return "llama-bpe"
    return None


def _permute_qk(w, n_head: int):
    """HF stores rotary Q/K rows as two halves; llama.cpp expects them interleaved in pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _llama3_rope_factors(rope: dict, theta: float, head_dim: int):
    """The per-frequency factors llama.cpp reads from `rope_freqs.weight` for Llama 3.1+ RoPE scaling
    (the same arithmetic as transformers' `_compute_llama3_parameters`)."""
    import numpy as np

    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def _adds_bos_eos(model_dir: Path) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok("a")["input_ids"]
    return {"bos": tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id],
            "eos": tok.eos_token_id is not None and ids[-1:] == [tok.eos_token_id]}


def gguf_support(model_dir: str | Path) -> Sentence | None:
    """None when `model_dir` can be written as GGUF here, else the sentence that says why not (a
    Sentence: English, with its Chinese as .zh)."""
    model_dir = Path(model_dir)
    stamps = tuple(_stamp(model_dir / f) for f in ("config.json", "tokenizer.json"))
    return _gguf_support(str(model_dir), stamps)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _gguf_support(model_dir: str, stamps: tuple) -> Sentence | None:
    """gguf_support, once per version of the folder's files: the Export tab asks on every page load, and
    parsing a tokenizer.json takes 100 ms or more."""
    model_dir = Path(model_dir)
    cfg = _read_json(model_dir / "config.json")
    convert = " Use llama.cpp's convert_hf_to_gguf.py on the merged folder."
    convert_zh = "请对合并后的文件夹使用 llama.cpp 的 convert_hf_to_gguf.py。"
    if cfg.get("model_type") != "llama":
        return Sentence(f"GGUF export here covers Llama-architecture models (Llama, SmolLM, TinyLlama); this one is "
                        f"'{cfg.get('model_type')}'." + convert,
                        f"这里的 GGUF 导出只支持 Llama 架构的模型（Llama、SmolLM、TinyLlama）；这个模型是"
                        f"“{cfg.get('model_type')}”。" + convert_zh)
    tj = _read_json(model_dir / "tokenizer.json")
    model = tj.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or (tj.get("decoder") or {}).get("type") != "ByteLevel":
        return Sentence("GGUF export here covers byte-level BPE tokenizers (Llama 3, SmolLM); this model's tokenizer is "
                        "sentencepiece-style." + convert,
                        "这里的 GGUF 导出只支持字节级 BPE 分词器（Llama 3、SmolLM）；这个模型的分词器是 sentencepiece 风格的。"
                        + convert_zh)
    if _gguf_pre_tokenizer(tj) is None:
        return Sentence("This tokenizer splits text in a way llama.cpp knows under a name we cannot be sure of." + convert,
                        "这个分词器切分文本的方式在 llama.cpp 里对应哪个名字，我们无法确定。" + convert_zh)
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if (rope.get("rope_type") or rope.get("type") or "default") not in ("default", "llama3", "linear"):
        kind = rope.get("rope_type") or rope.get("type")
        return Sentence(f"RoPE scaling '{kind}' is not supported by this GGUF export.",
                        f"这里的 GGUF 导出不支持 RoPE 缩放方式“{kind}”。")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        return Sentence("Llama models with bias terms are not supported by this GGUF export.",
                        "这里的 GGUF 导出不支持带偏置项（bias）的 Llama 模型。")
    return None


def write_gguf(model_dir: str | Path, out_file: str | Path, out_type: str = "f16",
               progress: Progress | None = None) -> Path:
    """A merged Llama-architecture model folder as one GGUF file (f16 or f32), tensor by tensor so
    that only one weight is in memory at a time. Loads in llama.cpp / Ollama and in transformers
    (`from_pretrained(folder, gguf_file=name)`)."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    progress = progress or _noop
    model_dir, out_file = Path(model_dir), Path(out_file)
    if out_type not in GGUF_TYPES:
        raise StudioError(f"GGUF type must be one of {', '.join(GGUF_TYPES)} (quantize it afterwards with llama.cpp).",
                          f"GGUF 类型必须是 {'、'.join(GGUF_TYPES)} 之一（之后可以用 llama.cpp 再量化）。")
    problem = gguf_support(model_dir)
    if problem:
        raise StudioError(problem.en, problem.zh)
    cfg = _read_json(model_dir / "config.json")
    tj = _read_json(model_dir / "tokenizer.json")
    n_head, n_layer = cfg["num_attention_heads"], cfg["num_hidden_layers"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = rope.get("rope_theta") or cfg.get("rope_theta") or 10000.0
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    vocab_size = cfg["vocab_size"]

    progress(0.02, Sentence("Writing the GGUF header and tokenizer", "正在写 GGUF 文件头和分词器"))
    tmp = out_file.with_name(f".{out_file.name}.partial")
    w = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(model_dir.parent.name if model_dir.name in ("merged", "model") else model_dir.name)
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(n_layer)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(float(theta))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    w.add_vocab_size(vocab_size)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if out_type == "f16" else gguf.LlamaFileType.ALL_F32)
    if rope_type == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["factor"]))

    # Vocabulary, typed the way llama.cpp's converter types it: added special tokens are CONTROL,
    # other added tokens USER_DEFINED, ids the tokenizer lacks (padding up to vocab_size) UNUSED.
    added = {t["id"]: t for t in tj.get("added_tokens", [])}
    reverse = {i: t for t, i in tj["model"]["vocab"].items()}
    reverse.update({i: t["content"] for i, t in added.items()})
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            token = reverse[i]
            tokens.append(token)
            # Like the converter: an added token spelled <|...|> is a control token even when not marked special.
            special = i in added and (added[i].get("special") or (token.startswith("<|") and token.endswith("|>")))
            types.append(gguf.TokenType.NORMAL if i not in added else
                         gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_gguf_pre_tokenizer(tj))
    w.add_token_list(tokens)
    w.add_token_types(types)
    # Merges, bos/eos/pad/unk ids and the chat template, read by gguf's own reader. Whether a BOS/EOS
    # is added to a prompt is taken from what the tokenizer really does: llama.cpp otherwise guesses
    # (and adds a BOS to SmolLM prompts, which the model never saw in training).
    special_vocab = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    special_vocab.add_special_token.update(_adds_bos_eos(model_dir))
    special_vocab.add_to_gguf(w, quiet=True)

    # Tensors: declare them all first, then stream the data in the same order.
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    index = _read_json(model_dir / "model.safetensors.index.json").get("weight_map")
    files = sorted(set(index.values())) if index else ["model.safetensors"]
    plan = []  # (gguf name, file, hf name, kind)
    for fname in files:
        with safe_open(model_dir / fname, framework="pt") as f:
            for hf in f.keys():
                if hf == "lm_head.weight" and cfg.get("tie_word_embeddings"):
                    continue  # tied: llama.cpp reuses token_embd when output.weight is absent
                if hf.endswith("rotary_emb.inv_freq"):
                    continue
                base, _, suffix = hf.rpartition(".")
                mapped = names.get_name(base)
                if mapped is None:
                    raise StudioError(f"The weight '{hf}' has no GGUF name; this model is not a plain Llama.",
                                      f"权重“{hf}”没有对应的 GGUF 名称；这个模型不是标准的 Llama。")
                plan.append((f"{mapped}.{suffix}", fname, hf, list(f.get_slice(hf).get_shape())))
    if rope_type == "llama3":
        plan.append((gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", None, None, [head_dim // 2]))

    def np_dtype(shape):  # llama.cpp keeps 1-D tensors (norms, rope factors) in f32
        return np.float16 if out_type == "f16" and len(shape) > 1 else np.float32

    for name, _, _, shape in plan:
        dt = np_dtype(shape)
        w.add_tensor_info(name, shape, np.dtype(dt), int(np.prod(shape)) * np.dtype(dt).itemsize)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        handles = {}
        try:
            for k, (name, fname, hf, shape) in enumerate(plan):
                if fname is None:
                    data = _llama3_rope_factors(rope, float(theta), head_dim)
                else:
                    if fname not in handles:
                        handles[fname] = safe_open(model_dir / fname, framework="pt")
                    data = handles[fname].get_tensor(hf).float().numpy()
                    if hf.endswith("q_proj.weight"):
                        data = _permute_qk(data, n_head)
                    elif hf.endswith("k_proj.weight"):
                        data = _permute_qk(data, n_kv)
                w.write_tensor_data(np.ascontiguousarray(data.astype(np_dtype(shape))))
                progress(0.05 + 0.93 * (k + 1) / len(plan), Sentence(f"Writing {name}", f"正在写 {name}"))
        finally:
            handles.clear()
            w.close()
        os.replace(tmp, out_file)
    finally:
        w.close()
        if tmp.exists():
            tmp.unlink()
    progress(1.0, Sentence(f"GGUF written ({out_type})", f"GGUF 文件已写好（{out_type}）"))
    return out_file


def export_gguf(merged_dir: str | Path, out_file: str | Path, out_type: str = "f16",
                progress: Progress | None = None) -> Path:
    """out_file: the merged model as GGUF (f16 or f32) for llama.cpp / Ollama; Llama architecture only."""
    return write_gguf(merged_dir, out_file, out_type, progress)
