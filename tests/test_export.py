"""Export of a finished run: adapter, zip, merged model, model card, re-run config, launch commands.

Everything runs on a tiny random Llama (hidden 32, 2 layers) with a small byte-level BPE tokenizer
trained here in milliseconds, and a LoRA adapter with non-zero B weights (a fresh LoRA has B = 0, so
it would change nothing and prove nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from studio.config import RunConfig
from studio.errors import StudioError
from studio.messages import Msg
from studio.paths import PRESETS_DIR, REPO_ROOT

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Classify the sentiment: I loved it. positive",
         "Classify the sentiment: terrible service. negative", "What is 12 + 30? The answer is 42.",
         "你好，世界！微调模型。", "user\nassistant\nsystem\n"] * 10
RUN_NAME = "20260101-000000-sft-tiny"


# ---- builders (imported by the other test_export_* files) ----------------------------------------

def make_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TEXTS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def make_base(folder: Path, dtype=torch.float32, tie: bool = True, **config) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = make_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=2, **config)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dtype)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_run(root: Path, base: Path, *, votes: bool = True, evals: bool = True, model_name: str | None = None) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = root / "runs" / RUN_NAME
    (run / "data").mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]}
            for i in range(8)]
    (run / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]), encoding="utf-8")
    (run / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[6:]), encoding="utf-8")
    cfg = RunConfig()
    cfg.name = "tiny"
    cfg.model.name = model_name or str(base)
    cfg.data.train_file = str(run / "data" / "train.jsonl")
    cfg.data.eval_file = str(run / "data" / "eval.jsonl")
    cfg.method.lora_rank, cfg.method.lora_alpha = 4, 8
    cfg.training.learning_rate = 3e-4
    cfg.save(run / "config.yaml")

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft.save_pretrained(run / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(run / "adapter")
    (run / "adapter" / "training_args.bin").write_bytes(b"pickled TrainingArguments")  # must not be exported
    (run / "summary.json").write_text(json.dumps({
        "status": "finished", "steps": 12, "duration_s": 31.5, "train_loss": 1.234, "eval_loss": 1.5,
        "tokens_per_second": 99.0, "peak_memory_bytes": 3 * 2**30, "estimated_memory_bytes": 4 * 2**30,
        "trainable_params": 12345, "world_size": 1}), encoding="utf-8")
    if evals:
        (run / "eval.json").write_text(json.dumps({
            "base": {"exact_match": 0.1, "rouge_l": 0.2, "perplexity": 30.0},
            "finetuned": {"exact_match": 0.8, "rouge_l": 0.7, "perplexity": 5.0}}), encoding="utf-8")
    if votes:
        def vote(voter, vote, a):  # the record studio.evaluate.votes writes
            sides = {"A": a, "B": "base" if a == "finetuned" else "finetuned"}
            winner = sides[vote] if vote in ("A", "B") else vote
            return {"kind": "vote", "voter": voter, "prompt": "Question?", "answer_a": "x", "answer_b": "y",
                    "sides": sides, "vote": vote, "winner": winner}

        vs = [vote("ann", "A", "finetuned"), vote("ann", "B", "base"), vote("bob", "A", "base"),
              vote("bob", "tie", "base"), vote("bob", "B", "base"), vote("cy", "both_bad", "finetuned"),
              {"kind": "rating", "voter": "ann", "scores": {"base": 2, "finetuned": 4}},
              {"kind": "rating", "voter": "bob", "scores": {"base": 3, "finetuned": 4}}]
        (run / "votes.jsonl").write_text("".join(json.dumps(v) + "\n" for v in vs) + '{"cut by a ki', encoding="utf-8")
    return run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    base = make_base(root / "base")
    return make_run(root, base), base


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _run_model(run: Path, base: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                                     str(run / "adapter")).eval()


IDS = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46]])


# ---- adapter -------------------------------------------------------------------------------------

def test_exported_adapter_reloads_with_the_same_outputs(tiny, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.export import export_adapter, zip_adapter

    run, base = tiny
    seen = []
    folder = export_adapter(run, tmp_path, progress=lambda f, m: seen.append((f, m)))
    assert folder == tmp_path / "adapter"
    assert (folder / "adapter_model.safetensors").is_file() and (folder / "README.md").is_file()
    assert not (folder / "training_args.bin").exists()
    assert seen[-1][0] == 1.0 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))

    before = _run_model(run, base)
    after = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), str(folder)).eval()
    with torch.no_grad(), before.disable_adapter():
        plain = before(input_ids=IDS).logits
    assert not torch.allclose(_logits(before, IDS), plain, atol=1e-4), "the adapter must change the outputs"
    assert torch.equal(_logits(before, IDS), _logits(after, IDS))
    assert AutoTokenizer.from_pretrained(folder).chat_template == CHATML

    z = zip_adapter(run, tmp_path)
    assert z.name == f"{RUN_NAME}-adapter.zip"
    with zipfile.ZipFile(z) as zf:
        names = zf.namelist()
    assert f"{RUN_NAME}-adapter/adapter_config.json" in names
    assert f"{RUN_NAME}-adapter/adapter_model.safetensors" in names


def test_adapter_of_a_run_without_one_is_a_sentence(tmp_path):
    from studio.export import export_adapter

    run = tmp_path / "run"
    run.mkdir()
    RunConfig().save(run / "config.yaml")
    with pytest.raises(StudioError, match="no adapter yet"):
        export_adapter(run, tmp_path / "out")
    with pytest.raises(StudioError, match="not a run folder"):
        export_adapter(tmp_path / "nothing", tmp_path / "out")


# ---- merged model --------------------------------------------------------------------------------

def test_merged_model_gives_the_same_greedy_outputs(tiny, tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.export import merge_model

    run, base = tiny
    seen = []
    folder = merge_model(run, tmp_path, progress=lambda f, m: seen.append((f, m)))
    assert folder == tmp_path / "merged"
    assert seen[-1] == (1.0, Msg("export.progress.merged_done")) and any("CPU" in str(m) for _, m in seen)
    assert (folder / "model.safetensors").is_file() and not (folder / "adapter_config.json").exists()
    with safe_open(folder / "model.safetensors", framework="pt") as f:
        assert not any("lora" in k for k in f.keys())

    merged = AutoModelForCausalLM.from_pretrained(folder).eval()
    ref = _run_model(run, base)
    torch.testing.assert_close(_logits(merged, IDS), _logits(ref, IDS), atol=1e-5, rtol=1e-4)
    gen = dict(max_new_tokens=12, do_sample=False, pad_token_id=2, eos_token_id=None)
    with torch.no_grad():
        assert torch.equal(merged.generate(IDS, **gen), ref.generate(input_ids=IDS, **gen))
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.chat_template == CHATML
    assert "<|im_start|>assistant" in tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                             add_generation_prompt=True)


def test_merged_model_keeps_the_base_dtype(tmp_path):
    from safetensors import safe_open

    from studio.export import merge_model

    base = make_base(tmp_path / "base16", dtype=torch.bfloat16)
    assert json.loads((base / "config.json").read_text())["dtype"] == "bfloat16"
    run = make_run(tmp_path, base, votes=False, evals=False)
    folder = merge_model(run, tmp_path / "out")
    with safe_open(folder / "model.safetensors", framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"


# ---- model card ----------------------------------------------------------------------------------

def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_model_card_content(tiny):
    from studio.export import blind_test, model_card

    run, base = tiny
    t, ratings = blind_test(run)
    assert (t.finetuned_wins, t.base_wins, t.ties, t.both_bad, t.voters) == (3, 1, 1, 1, 3)
    assert ratings.n == 2

    card = model_card(run)
    front = _front_matter(card)
    assert front["library_name"] == "peft" and "base_model" not in front  # a local base has no Hub id
    assert {"fine-tuning-studio", "sft", "lora"} <= set(front["tags"])
    assert "instructions (messages)" in card
    assert "Training rows: 6" in card and "Validation rows: 2" in card
    assert "| LoRA rank | 4 |" in card and "| LoRA alpha | 8 |" in card and "| Learning rate | 0.0003 |" in card
    assert "| exact_match | 0.1 | 0.8 | higher |" in card and "| perplexity | 30 | 5 | lower |" in card
    assert ("Over 6 votes from 3 people, the fine-tuned model won 3, the base won 1, 1 were ties and 1 both bad. "
            "Fine-tuned wins 75% of decided votes, 95% CI 30-95%, from 4 votes") in card
    assert "Mean score (1-5, 95% interval): fine-tuned 4.0" in card
    assert "## Intended use and limits" in card
    assert ("accelerate launch --config_file rerun/accelerate-fsdp.yaml --num_processes 2 -m studio train "
            "rerun/config.yaml") in card
    assert front["tags"].count("lora") == 1
    assert str(base) not in card and str(run) not in card, "no paths of this machine in a card"

    merged = _front_matter(model_card(run, "merged"))
    assert merged["library_name"] == "transformers" and "merged" in merged["tags"]


def test_model_card_names_the_hub_base_and_copes_without_results(tmp_path):
    from studio.export import model_card

    run = tmp_path / "run"
    run.mkdir()
    cfg = RunConfig()  # model.name = "embedded"
    cfg.save(run / "config.yaml")
    card = model_card(run)
    assert _front_matter(card)["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "No automatic before/after checks" in card and "No blind A/B votes" in card


# ---- re-run config and launch commands -----------------------------------------------------------

def test_launch_command_text(monkeypatch, tmp_path):
    from studio.export import launch_command

    monkeypatch.chdir(REPO_ROOT)
    assert (launch_command("runs/x/config.yaml", 4, "fsdp")
            == "accelerate launch --config_file presets/accelerate/fsdp.yaml --num_processes 4 -m studio train runs/x/config.yaml")
    assert (launch_command(REPO_ROOT / "runs/x/config.yaml", 8, "deepspeed")
            == "accelerate launch --config_file presets/accelerate/deepspeed.yaml --num_processes 8 -m studio train runs/x/config.yaml")
    assert launch_command("my runs/c.yaml", 2, "ddp").endswith("-m studio train 'my runs/c.yaml'")
    assert launch_command("c.yaml", 1, "fsdp") == "studio train c.yaml"
    with pytest.raises(StudioError, match="Unknown distributed backend"):
        launch_command("c.yaml", 2, "horovod")
    with pytest.raises(StudioError, match="at least 1"):
        launch_command("c.yaml", 0, "fsdp")


def test_rerun_folder(tiny, tmp_path):
    from studio.export import write_rerun

    run, _ = tiny
    r = write_rerun(run, tmp_path, num_gpus=4, backend="deepspeed")
    assert RunConfig.load(r.config) == RunConfig.load(run / "config.yaml")
    assert r.accelerate_config.read_text() == (PRESETS_DIR / "accelerate" / "deepspeed.yaml").read_text()
    assert r.train_command == "studio train rerun/config.yaml"
    assert r.launch_command == ("accelerate launch --config_file rerun/accelerate-deepspeed.yaml --num_processes 4 "
                                "-m studio train rerun/config.yaml")
    commands = (r.folder / "COMMANDS.md").read_text()
    assert r.train_command in commands and r.launch_command in commands
    assert (r.folder / "accelerate-ddp.yaml").is_file()  # for the two-CPU-process check


@pytest.mark.parametrize("path", sorted((PRESETS_DIR / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_presets_load(path):
    from accelerate.commands.config.config_args import ClusterConfig

    from studio.export import BACKENDS

    text = path.read_text()
    assert text.startswith("# "), "every preset opens with what it is for"
    assert path.name in BACKENDS.values()
    cc = ClusterConfig.from_yaml_file(str(path))  # rejects unknown top-level keys
    assert cc.distributed_type.value in ("MULTI_GPU", "FSDP", "DEEPSPEED")
    assert f"accelerate launch --config_file presets/accelerate/{path.name} --num_processes" in text
    if cc.distributed_type.value == "FSDP":
        assert cc.fsdp_config["fsdp_version"] == 2 and cc.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    if cc.distributed_type.value == "DEEPSPEED":
        # "auto" must reach DeepSpeed so the Trainer fills these from the run config.
        assert "gradient_accumulation_steps" not in cc.deepspeed_config


def test_fsdp_preset_makes_a_valid_fsdp_plugin(monkeypatch):
    """Through accelerate's own launcher: the YAML becomes FSDP_* variables, and the plugin the Trainer
    builds from them is FSDP2 with a full state dict and per-block wrapping."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(PRESETS_DIR / "accelerate" / "fsdp.yaml"),
                                               "--num_processes", "4", "-m", "studio", "train", "c.yaml"])
    args = _validate_launch_command(args)[0]
    assert args.use_fsdp and args.num_processes == 4
    for key, value in prepare_multi_gpu_env(args).items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.state_dict_type.name == "FULL_STATE_DICT" and plugin.cpu_ram_efficient_loading


def test_ddp_preset_starts_two_processes(tmp_path):
    """The trap in FACTS.md: `--cpu --num_processes 2` starts one process. The ddp preset must start two."""
    script = tmp_path / "rank.py"
    script.write_text("import os, pathlib\n"
                      "pathlib.Path(os.environ['OUT'], os.environ['RANK']).write_text(os.environ['WORLD_SIZE'])\n")
    env = {**__import__("os").environ, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(PRESETS_DIR / "accelerate" / "ddp.yaml"), "--num_processes", "2", "--main_process_port", "0", str(script)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["0", "1"]
    assert (tmp_path / "0").read_text() == "2"


# ---- the whole export, through the CLI -----------------------------------------------------------

def test_cli_export(tiny, tmp_path, capsys):
    from studio.cli import main

    run, _ = tiny
    out = tmp_path / "exp"
    assert main(["export", str(run), "--zip", "--card", "--out", str(out), "--num-gpus", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(out)
    assert (out / "README.md").is_file() and (out / "adapter" / "README.md").is_file()
    assert (out / f"{RUN_NAME}-adapter.zip").is_file()
    assert (out / "rerun" / "config.yaml").is_file() and (out / "rerun" / "accelerate-fsdp.yaml").is_file()
    assert any("--num_processes 8" in line for line in lines)
    assert not (out / "merged").exists()

    assert main(["export", str(tmp_path / "missing")]) == 1
    assert "is not a run folder" in capsys.readouterr().err


# ---- the embedded model, end to end --------------------------------------------------------------

@pytest.mark.slow
def test_embedded_model_export_merge_and_gguf(tmp_path):
    """The real default model (SmolLM2-135M-Instruct) with a LoRA on every linear layer: the merged
    model and its f16 GGUF answer a chat prompt with the same greedy tokens as base + adapter."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.export import export_run
    from studio.models.loading import embedded_model_dir

    base = embedded_model_dir()
    run = make_run(tmp_path, base, model_name="embedded")
    res = export_run(run, tmp_path / "out", zip=True, merge=True, gguf=True, gguf_types=["f16"], parity=False)
    ac = json.loads((res.adapter_dir / "adapter_config.json").read_text())
    assert ac["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in res.card.read_text()

    tok = AutoTokenizer.from_pretrained(res.merged_dir)
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, return_tensors="pt")
    prompt = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    gen = dict(max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        ref = _run_model(run, base).generate(input_ids=prompt, **gen)
        merged = AutoModelForCausalLM.from_pretrained(res.merged_dir).eval().generate(prompt, **gen)
        f16 = res.gguf_files[0]
        gguf_model = AutoModelForCausalLM.from_pretrained(f16.parent, gguf_file=f16.name,
                                                          dtype=torch.float32).eval()
        from_gguf = gguf_model.generate(prompt, **gen)
    assert torch.equal(merged, ref)
    assert torch.equal(from_gguf, ref)


def test_model_card_in_chinese_has_no_english_sentence(tiny):
    """The card is written in the language asked for: in Chinese, what is left in Latin letters outside code
    and front matter is names (LoRA, Fine-tuning Studio), identifiers (exact_match, cosine) and units."""
    import re

    from studio.export import model_card
    from studio.messages import say

    run, _ = tiny
    card = model_card(run, lang="zh")
    assert card.split("---\n", 2)[1] == model_card(run).split("---\n", 2)[1]  # the Hub metadata is the same
    prose = card.split("---\n", 2)[2]
    prose = re.sub(r"```.*?```", "", prose, flags=re.S)  # code: commands, the config, the usage example
    prose = re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)", "", prose)  # inline code, links
    assert say("export.card.h.limits", "zh") in card and say("export.card.lower", "zh") in card
    assert re.search(r"[\u4e00-\u9fff]", prose)
    names = {"Fine-tuning Studio", "PyTorch FSDP", "LoRA alpha", "LoRA dropout", "DPO beta"}
    for name in names:
        prose = prose.replace(name, "")
    sentences = re.findall(r"[A-Za-z][A-Za-z'-]*(?:[ ,]+[A-Za-z][A-Za-z'-]*){2,}", prose)
    assert sentences == [], sentences
    assert "your question" not in card.lower() and "你的问题" in card  # the usage example asks in Chinese too


def test_every_export_progress_message_is_a_catalog_message():
    """Each `progress(fraction, message)` call in studio/export/ (and `p(...)`, a step's share of the bar) passes
    `Msg("export.<id>", ...)` or forwards a message it was given: the tab shows it in the reader's language,
    the CLI in English. (Replaces tests/test_i18n_progress.py, which scanned the old studio/export.py.)"""
    import ast

    from studio.messages import has

    calls, bad = 0, []
    for path in sorted((REPO_ROOT / "studio" / "export").glob("*.py")):
        src = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(src)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("progress", "p")
                    and len(node.args) >= 2):
                continue
            calls += 1
            msg = node.args[1]
            if isinstance(msg, ast.Name):
                continue
            ok = (isinstance(msg, ast.Call) and getattr(msg.func, "id", None) == "Msg" and msg.args
                  and isinstance(msg.args[0], ast.Constant) and has(msg.args[0].value))
            if not ok:
                bad.append(f"{path.name}:{node.lineno} {ast.get_source_segment(src, node)}")
    assert calls >= 18  # the scan really finds them
    assert bad == []
