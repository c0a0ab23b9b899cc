"""Training throughput on three sides, same model, rows, steps and real tokens:

- "TRL defaults": a bare TRL SFTTrainer script left at TRL's defaults for everything about speed
  (gradient checkpointing on; fp32, TRL's bf16 default is off on a CPU; PyTorch's fused attention;
  rows in random order);
- "expert": the same script with the two lines an expert adds: gradient checkpointing off and bf16
  autocast on where the processor has it (on CUDA, bf16 where the GPU supports it);
- "studio": `studio train` with the same settings.

What decides the loss and not the speed is set the same on all three sides: LoRA r8 (alpha 16, dropout
0.05: the studio's defaults) on all linear layers, batch 8, rows cut at 256 tokens, learning rate 2e-4
on a linear schedule without warm-up, seed 42, loss on the answers only (the bare scripts get the rows
as prompt and completion, so TRL masks the prompts as the studio does). Throughput is real (non-padding)
tokens per second from the end of the first step to the end of the last, by TRL's own token count, so
model loading and the first step's warm-up count on no side. After training, each side's adapter is
scored the same way: the mean loss on the answers of held-out rows (not trained on).

Two data shapes (benchmarks/shapes.py): the quickstart's reviews (short rows, one-word answers) and
Alpaca-style rows of 100-256 tokens.

    python benchmarks/throughput.py [--steps 12] [--repeats 3] [--shapes reviews,alpaca] [--model embedded]

Prints each run, then per shape the medians and the ratios studio/defaults and studio/expert.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

BATCH, MAX_LENGTH, LR, RANK, ALPHA, DROPOUT, SEED, HELD_OUT = 8, 256, 2e-4, 8, 16, 0.05, 42, 64
SIDES = ("defaults", "expert", "studio")

BARE = textwrap.dedent('''
    import json, sys, time, torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    model, rows_file, steps, out, expert = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
    cfg = json.loads(sys.argv[6])
    rows = [json.loads(l) for l in open(rows_file)]
    events = []

    class Clock(TrainerCallback):  # timestamps only; no effect on training
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                events.append((time.time(), logs["num_tokens"]))

    on_cuda = torch.cuda.is_available()
    if expert:  # the expert's two lines
        speed = dict(gradient_checkpointing=False,
                     bf16=torch.cuda.is_bf16_supported() if on_cuda else cfg["cpu_bf16"])
        if not on_cuda:
            speed["use_cpu"] = True  # transformers autocasts bf16 on a CPU only when told it is one
    else:
        speed = dict(bf16=on_cuda and torch.cuda.is_bf16_supported())  # TRL's bf16 default fails on a CPU
    args = SFTConfig(output_dir=out, per_device_train_batch_size=cfg["batch"], max_length=cfg["max_length"],
                     max_steps=steps, learning_rate=cfg["lr"], seed=cfg["seed"], logging_steps=1, report_to="none",
                     save_strategy="no", **speed)
    peft = LoraConfig(r=cfg["rank"], lora_alpha=cfg["alpha"], lora_dropout=cfg["dropout"], target_modules="all-linear",
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), peft_config=peft,
                         callbacks=[Clock()])
    trainer.train()
    trainer.save_model(out + "/adapter")
    (t0, n0), (t1, n1) = events[0], events[-1]
    print("RESULT", json.dumps({"tokens_per_second": (n1 - n0) / (t1 - t0), "tokens": n1,
                                "peak": torch.cuda.max_memory_allocated() if on_cuda else 0,
                                "gradient_checkpointing": args.gradient_checkpointing, "bf16": args.bf16,
                                "adapter": out + "/adapter"}))
''')


def _bare(side: str, model: str, rows_file: Path, steps: int, out: Path) -> dict:
    from studio import hardware

    cfg = dict(batch=BATCH, max_length=MAX_LENGTH, lr=LR, seed=SEED, rank=RANK, alpha=ALPHA, dropout=DROPOUT,
               cpu_bf16=hardware.cpu_bf16_support())
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-c", BARE, model, str(rows_file), str(steps), str(out),
                           "1" if side == "expert" else "0", json.dumps(cfg)], capture_output=True, text=True, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"bare TRL script ({side}) failed:\n" + proc.stderr[-3000:])
    return json.loads(line[7:])


def _studio(model: str, rows_file: Path, steps: int, out: Path) -> dict:
    from studio.config import RunConfig

    cfg = RunConfig()
    cfg.model.name = model
    cfg.data.train_file = str(rows_file)
    cfg.data.eval_share = 0.0
    cfg.method.lora_rank, cfg.method.lora_alpha, cfg.method.lora_dropout = RANK, ALPHA, DROPOUT
    t = cfg.training
    t.max_steps, t.batch_size, t.max_length, t.learning_rate, t.seed = steps, BATCH, MAX_LENGTH, LR, SEED
    t.scheduler, t.warmup_ratio, t.logging_steps = "linear", 0.0, 1
    cfg.save(out / "studio.yaml")
    proc = subprocess.run([sys.executable, "-m", "studio", "train", str(out / "studio.yaml"), "--output-dir",
                           str(out / "runs")], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit("studio train failed:\n" + proc.stderr[-3000:])
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events = [e for e in events if "num_tokens" in e]
    e0, e1 = events[0], events[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"tokens_per_second": (e1["num_tokens"] - e0["num_tokens"]) / (e1["time"] - e0["time"]),
            "tokens": e1["num_tokens"], "peak": summary["peak_memory_bytes"],
            "gradient_checkpointing": summary["gradient_checkpointing"], "bf16": summary["precision"] == "bf16",
            "adapter": str(run_dir / "adapter")}


def answer_loss(model_dir: str, adapter: str, held_out: list[dict]) -> float:
    """Mean loss per answer token of held-out rows, fp32, no dropout: the same scoring for every side."""
    import math

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.evaluate.generate import answer_nll
    from studio.models.loading import load_tokenizer

    tok = load_tokenizer(model_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), adapter).eval()
    pairs = [(r["messages"][:-1], r["messages"][-1]["content"]) for r in held_out]
    total, count = answer_nll(model, tok, pairs, max_length=MAX_LENGTH)
    return total / count if count else math.nan


def _shape_rows(shape: str, tok, n: int) -> list[dict]:
    import shapes

    if shape == "reviews":
        return shapes.reviews()
    if shape == "alpaca":
        return shapes.alpaca(tok, n)
    raise SystemExit(f"unknown shape {shape!r}: reviews or alpaca")


def run_shape(shape: str, model: str, steps: int, repeats: int, tmp: Path) -> dict[str, list[dict]]:
    from studio.models.loading import load_tokenizer

    tok = load_tokenizer(model)
    rows = _shape_rows(shape, tok, BATCH * steps + HELD_OUT)
    train, held_out = rows[:BATCH * steps], rows[-HELD_OUT:]
    canonical = tmp / f"{shape}.jsonl"
    canonical.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train))
    prompt_completion = tmp / f"{shape}_pc.jsonl"  # TRL's conversational prompt-completion shape
    prompt_completion.write_text("".join(json.dumps({"prompt": r["messages"][:-1], "completion": r["messages"][-1:]},
                                                    ensure_ascii=False) + "\n" for r in train))
    results: dict[str, list[dict]] = {s: [] for s in SIDES}
    for rep in range(repeats):
        order = SIDES[rep % 3:] + SIDES[:rep % 3]  # each side runs first once in three repeats
        for side in order:
            out = tmp / f"{shape}-{side}-{rep}"
            out.mkdir()
            r = (_studio(model, canonical, steps, out) if side == "studio"
                 else _bare(side, model, prompt_completion, steps, out))
            r["answer_loss"] = answer_loss(model, r["adapter"], held_out)
            results[side].append(r)
            print(f"  {shape} repeat {rep + 1} {side:8s}: {r['tokens_per_second']:6.1f} tokens/s, "
                  f"{r['tokens']} tokens, held-out answer loss {r['answer_loss']:.3f} "
                  f"(checkpointing {r['gradient_checkpointing']}, bf16 {r['bf16']})", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shapes", default="reviews,alpaca")
    args = ap.parse_args()

    from studio.models.loading import resolve

    model = resolve(args.model)  # a folder every side can load
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            results = run_shape(shape.strip(), model, args.steps, args.repeats, Path(tmp))
            med = {s: statistics.median(r["tokens_per_second"] for r in results[s]) for s in SIDES}
            loss = {s: statistics.median(r["answer_loss"] for r in results[s]) for s in SIDES}
            summary.append((shape, med, loss))
    print()
    print(f"medians of {args.repeats} runs, {args.steps} steps of {BATCH} rows each:")
    for shape, med, loss in summary:
        print(f"{shape}: " + ", ".join(f"{s} {med[s]:.1f} tokens/s (answer loss {loss[s]:.3f})" for s in SIDES))
        print(f"{shape}: studio / defaults {med['studio'] / med['defaults']:.2f}x, "
              f"studio / expert {med['studio'] / med['expert']:.2f}x")


if __name__ == "__main__":
    main()
