"""Health rules on synthetic metric series: each fires on its problem, stays quiet on a normal run."""

import math
import random

from studio.engine import health


def events(losses, evals=None, lr=2e-4, grads=None, steps_per_epoch=None):
    """Metric events as the engine logs them: one per step, plus eval events at given steps."""
    out = []
    for i, loss in enumerate(losses, start=1):
        e = {"step": i, "epoch": i / (steps_per_epoch or len(losses)), "loss": loss, "learning_rate": lr,
             "grad_norm": (grads[i - 1] if grads else 1.0)}
        out.append(e)
    for step, value in (evals or []):
        out.append({"step": step, "epoch": step / (steps_per_epoch or len(losses)), "eval_loss": value})
    return sorted(out, key=lambda e: (e["step"], "eval_loss" in e))


def codes(findings):
    return [f.code for f in findings]


def normal_curve(n=60, seed=0):
    rnd = random.Random(seed)
    return [2.5 * math.exp(-i / 20) + 0.4 + rnd.uniform(-0.08, 0.08) for i in range(n)]


def test_a_normal_run_is_quiet():
    m = events(normal_curve(), evals=[(20, 1.3), (40, 1.0), (60, 0.95)], steps_per_epoch=20)
    assert health.check(m) == []
    assert health.check([]) == []


def test_nan_loss_says_lower_the_learning_rate_in_both_languages():
    m = events([2.0, 1.9, float("nan")], lr=5e-3)
    (f,) = health.check(m)
    assert f.code == "nan" and f.level == "error"
    assert "step 3" in f.en and "learning rate is too high" in f.en and "5e-4" in f.en
    assert "学习率太高" in f.text("zh") and "5e-4" in f.text("zh")


def test_exploding_loss():
    m = events([2.0, 1.8, 1.6, 1.5, 1.5, 2.5, 6.0, 9.0, 14.0])
    f = health.check(m)[0]
    assert f.code == "exploding" and "learning rate is too high" in f.en and "学习率太高" in f.text("zh")


def test_gradient_spike_warns_before_the_loss_goes():
    grads = [1.0, 1.1, 0.9, 1.0, 1.2, 1.0, 45.0]
    m = events([2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.5], grads=grads)
    (f,) = health.check(m)
    assert f.code == "exploding" and f.level == "warning" and "gradient norm" in f.en


def test_overfitting_names_the_best_epoch():
    train = [2.0 - 0.03 * i for i in range(60)]  # keeps falling
    m = events(train, evals=[(20, 1.50), (40, 1.35), (60, 1.60)], steps_per_epoch=20)
    (f,) = health.check(m)
    assert f.code == "overfitting"
    assert "1.35" in f.en and "epoch 2" in f.en and "train 2 epochs" in f.en
    assert "第 2 轮" in f.text("zh")


def test_rising_validation_with_rising_training_loss_is_not_overfitting():
    train = [1.0 + 0.001 * i for i in range(40)]
    m = events(train, evals=[(20, 1.0), (40, 1.3)], steps_per_epoch=20)
    assert "overfitting" not in codes(health.check(m))


def test_small_validation_wobble_is_tolerated():
    m = events(normal_curve(), evals=[(20, 1.0), (40, 0.95), (60, 0.96)], steps_per_epoch=20)
    assert "overfitting" not in codes(health.check(m))


def test_flat_loss_with_a_tiny_learning_rate():
    rnd = random.Random(1)
    m = events([2.3 + rnd.uniform(-0.01, 0.01) for _ in range(30)], lr=1e-7)
    (f,) = health.check(m, learning_rate=1e-7)
    assert f.code == "flat"
    assert "1e-7" in f.en and "raise it" in f.en and "Data tab" in f.en
    assert "学习率" in f.text("zh") and "数据" in f.text("zh")


def test_flat_needs_enough_points_after_warmup():
    # A warmup ramp: the loss cannot move before the learning rate arrives.
    m = [{"step": i, "loss": 2.3, "learning_rate": 2e-4 * i / 10} for i in range(1, 11)]
    m += [{"step": 10 + i, "loss": 2.3 - 0.01 * i, "learning_rate": 2e-4} for i in range(1, 5)]
    assert health.check(m) == []


def test_a_loss_near_zero_is_learned_not_flat():
    m = events([0.01] * 30)
    assert health.check(m) == []


def test_out_of_memory_surfaces_the_engines_advice():
    err = ("Out of memory: the model, its training state and this batch did not fit on the device. Try: lower the "
           "batch size to 4 and raise gradient accumulation to 2. The app is still running.")
    (f,) = health.check(events([2.0, 1.9]), error=err)
    assert f.code == "oom" and f.level == "error"
    assert "batch size to 4" in f.en and "batch size to 4" in f.text("zh") and "内存不足" in f.text("zh")
    assert health.check([], error="Training failed with an unexpected error (ValueError: x).") == []


def test_findings_serialise():
    f = health.check(events([1.0, float("inf")]))[0]
    assert f.to_dict()["code"] == "nan" and set(f.to_dict()) == {"code", "level", "en", "message"}
    from studio.messages import text_of
    assert text_of(f.to_dict()["message"], "zh") == f.text("zh")
