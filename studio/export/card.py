"""The model card (README.md) of an exported adapter or merged model: Hub metadata, what it is, the data,
the settings, the results (automatic checks and the blind test), how to use it, how to re-run it, and its
limits. Every sentence comes from the message catalog, in the language asked for (English by default)."""

from __future__ import annotations

from pathlib import Path

import yaml

from studio.config import RunConfig
from studio.engine.runs import load_run_config, read_summary
from studio.run_files import EVAL, GGUF_REPORT, VOTES
from studio.export.rerun import backend_help, launch_command, train_command
from studio.export.source import base_model_id, data_summary, portable_config, read_json
from studio.messages import Msg, say
from studio.files import atomic_write_text

LOWER_IS_BETTER = {"perplexity", "loss", "eval_loss", "ppl"}
STAGES = ("sft", "cpt", "dpo")  # each has `export.card.stage.<name>`


def blind_test(run_dir: str | Path):
    """(Tally, RatingSummary) of the run's votes.jsonl, counted by studio.evaluate (one truth for the
    Compare tab and the card): fine-tuned wins, base wins, ties and both-bad, with a Wilson interval."""
    from studio.evaluate.tally import rating_summary, tally
    from studio.evaluate.votes import read_records

    records = read_records(Path(run_dir) / VOTES)
    return tally(records), rating_summary(records)


def fmt(v) -> str:
    """A value in a card table: thousands separated, floats to four significant digits."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _what(kind: str, method: str) -> str:
    if kind == "adapter":
        return "export.card.what.qlora" if method == "qlora" else "export.card.what.lora"
    return "export.card.what.full" if method == "full" else "export.card.what.merged"


def _table(head: tuple[str, ...], rows: list[tuple], lang: str) -> list[str]:
    lines = ["| " + " | ".join(say(h, lang) for h in head) + " |", "|" + " --- |" * len(head)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _settings(cfg: RunConfig, summary: dict, lang: str) -> list[tuple[str, str]]:
    m, t = cfg.method, cfg.training
    hp = [("stage", t.stage), ("method", m.method)]
    if m.method in ("lora", "qlora"):
        hp += [("lora_rank", m.lora_rank), ("lora_alpha", m.lora_alpha), ("lora_dropout", m.lora_dropout),
               ("target_modules", m.target_modules)]
    if m.method == "qlora":
        hp.append(("quant", say("export.card.quant_bits", lang, bits=m.quant_bits)))
    batch = say("export.card.batch", lang, bs=t.batch_size, ga=t.grad_accum, total=t.batch_size * t.grad_accum)
    if (summary.get("world_size") or 1) > 1:
        batch = say("export.card.batch_procs", lang, batch=batch, n=summary["world_size"])
    hp += [("epochs", t.epochs), ("max_steps", t.max_steps or say("export.card.all_steps", lang)),
           ("lr", t.learning_rate), ("scheduler", say("export.card.scheduler", lang, name=t.scheduler, warmup=t.warmup_ratio)),
           ("batch", batch), ("max_length", t.max_length), ("precision", t.precision), ("seed", t.seed)]
    if t.stage == "dpo":
        hp.append(("dpo_beta", t.dpo_beta))
    return [(say(f"export.card.hp.{k}", lang), fmt(v)) for k, v in hp]


def _facts(summary: dict, lang: str) -> list[tuple[str, str]]:
    facts = [("steps", summary.get("steps")), ("time", summary.get("duration_s")),
             ("train_loss", summary.get("train_loss")), ("eval_loss", summary.get("eval_loss")),
             ("params", summary.get("trainable_params")), ("procs", summary.get("world_size"))]
    if summary.get("peak_memory_bytes"):
        facts.append(("peak", summary["peak_memory_bytes"] / 2**30))
    return [(say(f"export.card.fact.{k}", lang), fmt(v)) for k, v in facts if v is not None]


def _results(run_dir: Path, lang: str) -> list[str]:
    evals = read_json(run_dir / EVAL)
    tally, ratings = blind_test(run_dir)
    lines = []
    before, after = evals.get("base") or {}, evals.get("finetuned") or {}
    shared = [k for k in before if k in after and isinstance(before[k], (int, float)) and isinstance(after[k], (int, float))]
    if shared:
        rows = [(k, fmt(before[k]), fmt(after[k]),
                 say("export.card.lower" if k in LOWER_IS_BETTER else "export.card.higher", lang)) for k in shared]
        lines += [say("export.card.results.intro", lang), "",
                  *_table(("export.card.col.metric", "export.card.col.base", "export.card.col.finetuned",
                           "export.card.col.better"), rows, lang), ""]
    elif not evals.get("general"):  # the general-knowledge check below is a before/after check too
        lines += [say("export.card.no_checks", lang), ""]
    if tally.total:
        people = Msg("export.card.people.one" if tally.voters == 1 else "export.card.people.many", n=tally.voters)
        lines += [say("export.card.blind", lang, total=tally.total, people=people, ft=tally.finetuned_wins,
                      base=tally.base_wins, ties=tally.ties, both_bad=tally.both_bad, sentence=tally.message()), ""]
    else:
        lines += [say("export.card.no_votes", lang), ""]
    if ratings.n:
        lines += [ratings.message().text(lang), ""]
    return lines + _general(evals.get("general") or {}, lang)


def _general(general: dict, lang: str) -> list[str]:
    """What the model already knew: perplexity on the bundled general questions, before and after."""
    from studio.evaluate.forgetting import verdict_msg

    verdict = verdict_msg(general)
    if verdict is None:
        return []
    before, after = general.get("base") or {}, general.get("finetuned") or {}
    keys = ["perplexity"] + sorted(k for k in before if k.startswith("perplexity_") and k in after)
    rows = [(say(f"export.card.general.{k}", lang), fmt(before[k]), fmt(after[k])) for k in keys
            if before.get(k) is not None and after.get(k) is not None]
    return [say("export.card.general.intro", lang, n=general.get("n")), "",
            *_table(("export.card.col.metric", "export.card.col.base", "export.card.col.finetuned"), rows, lang),
            "", verdict.text(lang), ""]


def _gguf(run_dir: Path, lang: str) -> list[str]:
    """Each GGUF file of the last export, its size and how closely it answers like the merged model."""
    files = (read_json(run_dir / GGUF_REPORT) or {}).get("files") or []
    if not files:
        return []
    rows = [(f"`{e['file']}`", e["type"].upper(), f"{e['size_bytes'] / 2**20:,.1f} MiB",
             f"{(e.get('next_token_agreement') or 0) * 100:.1f}%", f"{(e.get('same_answers') or 0) * 100:.0f}%")
            for e in files]
    return [say("export.card.h.gguf", lang), "", say("export.card.gguf.intro", lang, n=files[0].get("n")), "",
            *_table(("export.card.col.file", "export.card.col.gguf_type", "export.card.col.size",
                     "export.card.col.agree", "export.card.col.same"), rows, lang), "",
            say("export.card.gguf.ollama", lang), "", "```bash", "ollama create my-model -f Modelfile",
            "ollama run my-model", "```", ""]


def _usage(is_lora: bool, lang: str) -> list[str]:
    repo = "YOUR-NAME/THIS-REPO"
    if is_lora:
        code = ["from peft import AutoPeftModelForCausalLM", "from transformers import AutoTokenizer", "",
                f'model = AutoPeftModelForCausalLM.from_pretrained("{repo}")']
    else:
        code = ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'model = AutoModelForCausalLM.from_pretrained("{repo}")']
    question = say("export.card.example_question", lang).replace('"', '\\"')
    return ["```python", *code, f'tokenizer = AutoTokenizer.from_pretrained("{repo}")',
            f'messages = [{{"role": "user", "content": "{question}"}}]',
            'ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")',
            "print(tokenizer.decode(model.generate(ids, max_new_tokens=200)[0][ids.shape[1]:], skip_special_tokens=True))",
            "```", ""]


def model_card(run_dir: str | Path, kind: str = "adapter", *, num_gpus: int = 2, backend: str = "fsdp",
               lang: str = "en") -> str:
    """README.md text for an exported adapter (`kind="adapter"`) or merged model (`kind="merged"`), in `lang`."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    summary = read_summary(run_dir)
    data = data_summary(run_dir)
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

    base_link = f"[{base}](https://huggingface.co/{base})" if base else say("export.card.base_local", lang, name=base_label)
    stage = say(f"export.card.stage.{t.stage}", lang) if t.stage in STAGES else t.stage
    n = max(num_gpus, 2)
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {cfg.name or run_dir.name}", "",
             say("export.card.intro", lang, what=Msg(_what(kind, m.method)), base=base_link, stage=stage), "",
             say("export.card.h.data", lang), "",
             say("export.card.data.format", lang, format=data["format"]),
             say("export.card.data.train", lang, n=fmt(data["train_rows"])),
             say("export.card.data.eval", lang, n=fmt(data["eval_rows"])), "",
             say("export.card.h.method", lang), "",
             *_table(("export.card.col.setting", "export.card.col.value"), _settings(cfg, summary, lang), lang)]
    facts = _facts(summary, lang)
    if facts:
        lines += ["", *_table(("export.card.col.training", "export.card.col.value"), facts, lang)]
    lines += ["", say("export.card.h.results", lang), "", *_results(run_dir, lang),
              say("export.card.h.use", lang), "", *_usage(is_lora, lang), *_gguf(run_dir, lang)]
    lines += [say("export.card.h.rerun", lang), "",
              say("export.card.rerun.settings", lang), "",
              "```yaml", portable_config(cfg).to_yaml().rstrip(), "```", "",
              say("export.card.rerun.one", lang), "",
              "```bash", train_command("rerun/config.yaml"), "```", "",
              say("export.card.rerun.many", lang, n=n, backend=backend, help=backend_help(backend)), "",
              "```bash", launch_command("rerun/config.yaml", n, backend,
                                        accelerate_config=f"rerun/accelerate-{backend}.yaml"), "```", ""]
    lines += [say("export.card.h.limits", lang), "",
              say("export.card.limit.task", lang, format=data["format"], rows=fmt(data["train_rows"])),
              say("export.card.limit.wrong", lang),
              say("export.card.limit.small", lang),
              say("export.card.limit.inherits", lang, base=base_label), ""]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path, folder: str | Path, kind: str = "adapter", **kw) -> Path:
    path = Path(folder) / "README.md"
    atomic_write_text(path, model_card(run_dir, kind, **kw))
    return path


def card_preview(card: str) -> str:
    """The card as Markdown for a page: its YAML front matter (Hub metadata) shown as a code block, since
    Markdown would run it together into one line."""
    if card.startswith("---\n"):
        end = card.find("\n---\n", 4)
        if end > 0:
            return f"```yaml\n{card[4:end]}\n```\n{card[end + 5:]}"
    return card
