"""The CPU levers change the speed, never the result: the answer-only loss gives TRL's loss and gradients,
the fast dropout drops with the asked probability, the attention chosen by length gives the same outputs."""

import pytest
import torch

from studio.engine import cpu_speed


def test_answer_log_probs_match_full_logits_in_value_and_gradient(monkeypatch):
    monkeypatch.setattr(cpu_speed, "LOSS_CHUNK_ELEMENTS", 3 * 50)  # several chunks of 3 tokens
    torch.manual_seed(0)
    hidden = torch.randn(10, 16, dtype=torch.float32, requires_grad=True)
    weight = torch.randn(50, 16, dtype=torch.float32, requires_grad=True)
    bias = torch.randn(50, dtype=torch.float32, requires_grad=True)
    targets = torch.randint(0, 50, (10,))
    fn = cpu_speed._answer_logprob_function()
    logp, top1 = fn.apply(hidden, weight, bias, targets, torch.float32)
    (logp * torch.linspace(0.5, 1.5, 10, dtype=torch.float32)).sum().backward()
    got = [hidden.grad.clone(), weight.grad.clone(), bias.grad.clone()]

    for t in (hidden, weight, bias):
        t.grad = None
    logits = hidden @ weight.t() + bias
    want = torch.log_softmax(logits, -1).gather(1, targets[:, None])[:, 0]
    (want * torch.linspace(0.5, 1.5, 10, dtype=torch.float32)).sum().backward()
    assert torch.allclose(logp, want, atol=1e-5)
    assert torch.equal(top1, logits.argmax(-1) == targets)
    for g, t in zip(got, (hidden, weight, bias)):
        assert torch.allclose(g, t.grad, atol=1e-5)


@pytest.fixture()
def sft_pair(tiny_model_dir):
    """The same tiny LoRA model and batch in TRL's SFTTrainer and in the studio's answer-loss trainer."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from studio.engine.datasets import sft_encode

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [{"messages": [{"role": "user", "content": f"Review {i}: great product " * (1 + i % 3)},
                          {"role": "assistant", "content": "positive" if i % 2 else "negative"}]} for i in range(4)]
    data = Dataset.from_list(sft_encode(rows, tok, 128)[0])

    def build(cls, out):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        args = SFTConfig(output_dir=str(out), per_device_train_batch_size=4, max_length=128, report_to="none",
                         use_cpu=True, bf16=False, max_steps=1)
        return cls(model=model, args=args, train_dataset=data, processing_class=tok,
                   peft_config=LoraConfig(r=4, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"))

    return build


def test_answer_loss_trainer_gives_trls_loss_and_gradients(sft_pair, tmp_path):
    from trl import SFTTrainer

    results = []
    for cls in (SFTTrainer, cpu_speed.answer_loss_trainer(SFTTrainer)):
        trainer = sft_pair(cls, tmp_path / cls.__name__)
        batch = next(iter(trainer.get_train_dataloader()))
        model = trainer.model
        model.train()
        loss = trainer.compute_loss(model, batch, num_items_in_batch=None)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((loss.item(), grads, trainer._metrics["train"]["num_tokens"][-1]))
    (trl_loss, trl_grads, trl_tokens), (our_loss, our_grads, our_tokens) = results
    assert our_loss == pytest.approx(trl_loss, rel=1e-5)
    assert our_tokens == trl_tokens  # the token count the speed is measured with
    assert trl_grads.keys() == our_grads.keys()
    for name in trl_grads:
        assert torch.allclose(our_grads[name], trl_grads[name], rtol=1e-4, atol=1e-6), name


def test_fast_dropout_drops_the_asked_share_and_only_in_training():
    drop = cpu_speed._fast_dropout_class()(0.1)
    x = torch.ones(1000, 1000, requires_grad=True)
    y = drop(x)
    kept = (y != 0).float().mean().item()
    assert kept == pytest.approx(0.9, abs=0.002)
    assert y[y != 0].unique().tolist() == [pytest.approx(1 / 0.9)]
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)  # the gradient flows where the input was kept
    drop.eval()
    assert drop(x) is x


def test_levers_keep_the_models_outputs(tiny_model_dir):
    """LoRA dropout replaced, and plain attention for short batches, the fused kernel for long ones: the
    same logits on real tokens either way."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa"),
                           LoraConfig(r=4, lora_dropout=0.1, target_modules="all-linear", task_type="CAUSAL_LM"))
    model.eval()
    ids = torch.randint(0, 300, (3, 40))
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0
    mask[2, 9:] = 0
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
        done = cpu_speed.prepare(model)
        assert done["fast_dropout_layers"] == 14 and done["attention_by_length"]
        short = model(input_ids=ids, attention_mask=mask).logits
        assert model.config._attn_implementation == "eager"
        model(input_ids=torch.randint(0, 300, (1, cpu_speed.SHORT_ATTENTION_TOKENS + 1)))
        assert model.config._attn_implementation == "sdpa"
    real = mask.bool()
    assert torch.allclose(short[real], before[real], atol=1e-5)


def test_threads_follow_the_cpu_quota(monkeypatch):
    monkeypatch.setattr(cpu_speed, "_cgroup_cpu_quota", lambda: 1.0)
    assert cpu_speed.training_threads() == 1
    monkeypatch.setattr(cpu_speed, "_cgroup_cpu_quota", lambda: 64.0)
    import os

    assert 1 <= cpu_speed.training_threads() <= len(os.sched_getaffinity(0))


def test_the_plan_counts_plain_attention_for_short_cpu_runs():
    assert cpu_speed.attention_for_plan("cpu", 256) == "eager"
    assert cpu_speed.attention_for_plan("cpu", 1024) == "auto"
    assert cpu_speed.attention_for_plan("cuda", 256) == "auto"
