"""Generation for evaluation: one model in memory, base and fine-tuned through the same weights.

`ModelPair.use("base")` is the run's model with its LoRA adapter disabled (`model.disable_adapter()`),
`use("finetuned")` the same model with it on: no second copy in memory. Because switching the adapter
changes the whole model, every use of the device goes through `device_turn()`, a first-come,
first-served lock for the process: one generation at a time, in order, and never while a training run
holds the device (`is_busy`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from studio.device_arbiter import ARBITER, DeviceBusy
from studio.errors import StudioError
from studio.models.chat import ensure_chat_template, render_prompt

MODELS = ("base", "finetuned")
# End-of-turn markers of common chat templates: a chat model stops at these even when the tokenizer's
# eos_token is the end-of-text token (Llama 3 ends a turn with <|eot_id|>, not <|end_of_text|>).
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy: the same prompt always gets the same answer
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    repetition_penalty: float = 1.0
    seed: int = 0  # both models sample with this seed, so neither gets luckier random numbers

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    def to_dict(self) -> dict:
        return asdict(self)


# ---- the device queue: studio.device_arbiter, which training asks too -----------------------------


def training_busy() -> bool:
    """True while a training run holds the device."""
    return ARBITER.training_busy()


def check_free(is_busy: Callable[[], bool] | None = None) -> None:
    if (is_busy or training_busy)():
        raise DeviceBusy("engine.busy.training")


@contextmanager
def device_turn(is_busy: Callable[[], bool] | None = None, timeout: float | None = 600):
    """Hold the device for one piece of work; refuses politely while training runs."""
    check_free(is_busy)
    with ARBITER.generation(timeout):
        check_free(is_busy)  # a caller's own notion of busy may have changed while we waited
        yield


# ---- the pair -----------------------------------------------------------------------------------
@dataclass
class ModelPair:
    """The fine-tuned model and a way to get the base from it."""

    model: Any
    tokenizer: Any
    base: Any = None  # only for a full fine-tune, which has no adapter to switch off
    run_dir: Path | None = None

    def __post_init__(self):
        prepare_tokenizer(self.tokenizer)

    @contextmanager
    def use(self, which: str):
        """The model that plays `which` ("base" or "finetuned"). Hold `device_turn()` around it: the
        adapter switch is global to the model."""
        if which == "finetuned":
            yield self.model
        elif which == "base":
            if self.base is not None:
                yield self.base
            elif hasattr(self.model, "disable_adapter"):
                with self.model.disable_adapter():
                    yield self.model
            else:
                raise StudioError("eval.error.no_base")
        else:
            raise ValueError(f"which must be one of {MODELS}")

    @property
    def device(self):
        return next(self.model.parameters()).device


def prepare_tokenizer(tok) -> None:
    # Decoder-only models continue the last token of each row: pad on the left so every row ends at the
    # same position. A tokenizer without a pad token pads with eos (masked out by attention anyway).
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    ensure_chat_template(tok)


def load_pair(run_dir: str | Path, device: str | None = None) -> ModelPair:
    """The run's model (base + adapter) once in memory; for a full fine-tune, the base loaded beside it."""
    from studio.engine.runs import load_run_model

    model, tok, cfg = load_run_model(run_dir, device=device)
    base = None
    if not hasattr(model, "disable_adapter"):
        from studio.models.loading import load_model

        base = load_model(cfg.model.name, dtype=next(model.parameters()).dtype,
                          trust_remote_code=cfg.model.trust_remote_code, revision=cfg.model.revision)
        base.to(next(model.parameters()).device).eval()
    return ModelPair(model, tok, base=base, run_dir=Path(run_dir))


def stop_token_ids(model, tok) -> list[int]:
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, tok.eos_token_id):
        if isinstance(value, int):
            ids.append(value)
        elif isinstance(value, (list, tuple)):
            ids.extend(int(v) for v in value)
    vocab = tok.get_vocab()
    ids.extend(vocab[t] for t in _END_OF_TURN if t in vocab)
    return sorted(set(ids))


def _generation_config(model, tok, settings: GenerationSettings, num_return_sequences: int = 1):
    from transformers import GenerationConfig

    kwargs = dict(max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
                  num_return_sequences=num_return_sequences,
                  eos_token_id=stop_token_ids(model, tok), pad_token_id=tok.pad_token_id,
                  repetition_penalty=settings.repetition_penalty)
    if settings.do_sample:  # sampling knobs only when sampling, or transformers warns on every call
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k or None)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    return GenerationConfig(**kwargs)


def _prompt_text(tok, prompt: str | list[dict]) -> str:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return render_prompt(tok, messages)


def generate_batch(model, tok, prompts: list, settings: GenerationSettings | None = None,
                   batch_size: int = 8, num_return_sequences: int = 1) -> list[str]:
    """Answers to `prompts` (strings or message lists), batched. The caller holds the device. With
    `num_return_sequences` > 1 the answers of one prompt come one after the other."""
    import torch

    settings = settings or GenerationSettings()
    prepare_tokenizer(tok)
    texts = [_prompt_text(tok, p) for p in prompts]
    # Longest first: rows of similar length share a batch, so less padding is computed.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    gen_config = _generation_config(model, tok, settings, num_return_sequences)
    device = next(model.parameters()).device
    out: dict[int, list[str]] = {}
    for start in range(0, len(order), max(1, batch_size)):
        idx = order[start:start + batch_size]
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        if settings.do_sample:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            generated = model.generate(**enc, generation_config=gen_config)
        new_tokens = generated[:, enc["input_ids"].shape[1]:]
        decoded = [whole_text(tok, row.tolist()) for row in new_tokens]
        for k, i in enumerate(idx):
            out[i] = [d.strip() for d in decoded[k * num_return_sequences:(k + 1) * num_return_sequences]]
    return [a for i in range(len(texts)) for a in out[i]]


CUT_MARK = " …"  # after an answer that reached the token limit: it goes on, and the reader should know


def whole_text(tok, ids: list[int]) -> str:
    """The answer's text with whole characters only: an answer cut at the token limit (or mid-stream) may
    end inside a character that a byte-level vocabulary spells in several tokens (Chinese, emoji), which
    decodes to U+FFFD. The tokens of that unfinished character are left out."""
    text = tok.decode(ids, skip_special_tokens=True)
    for drop in range(1, 4):  # a UTF-8 character is at most 4 bytes: at most 3 tokens of it can trail
        if not text.endswith("\ufffd") or drop > len(ids):
            break
        text = tok.decode(ids[:-drop], skip_special_tokens=True)
    return text.rstrip("\ufffd")


# ---- perplexity of reference answers -------------------------------------------------------------
def answer_tokens(tok, messages: list[dict], reference: str, max_length: int = 1024) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for a prompt + reference, rendered with the chat template; labels are -100
    everywhere except the reference's tokens (and its end-of-turn marker), as in training."""
    ensure_chat_template(tok)
    prefix = render_prompt(tok, messages)
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": reference}], tokenize=False)
    if not full.startswith(prefix):  # a template that rewrites earlier turns: score the bare answer
        full = prefix + reference + (tok.eos_token or "")
    ids = tok(full, add_special_tokens=False)["input_ids"]
    start = len(tok(prefix, add_special_tokens=False)["input_ids"])
    end = len(ids)
    # Trailing newlines after the end-of-turn token are not worth predicting (same rule as training).
    while end > start and tok.decode(ids[end - 1:end]).strip() == "":
        end -= 1
    labels = [t if start <= i < end else -100 for i, t in enumerate(ids)]
    return ids[:max_length], labels[:max_length]


LOGITS_BUDGET = 2 ** 27  # logits elements per forward (0.5 GB in fp32): a 150k vocabulary x 1k tokens is 0.6 GB a row


def answer_nll(model, tok, rows: list[tuple[list[dict], str]], batch_size: int = 8,
               max_length: int = 1024) -> tuple[float, int]:
    """(summed negative log-likelihood, number of answer tokens) of the references given their prompts.
    Perplexity is exp(sum / count): the token-averaged NLL over the whole set."""
    import torch

    encoded = [answer_tokens(tok, m, r, max_length) for m, r in rows]
    device = next(model.parameters()).device
    vocab = int(getattr(model.config, "vocab_size", 0) or len(tok))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    total, count = 0.0, 0
    start = 0
    while start < len(encoded):
        # As many rows as the batch size allows and the logits budget affords (at least one).
        end = start + 1
        while (end < len(encoded) and end - start < max(1, batch_size)
               and (end + 1 - start) * max(len(e[0]) for e in encoded[start:end + 1]) * vocab <= LOGITS_BUDGET):
            end += 1
        chunk = encoded[start:end]
        start = end
        width = max(len(ids) for ids, _ in chunk)
        # Right padding here: we score given tokens, nothing is generated after the last one.
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in chunk], device=device)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk], device=device)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk], device=device)
        scored = (labels != -100).nonzero()
        if len(scored) == 0:
            continue
        # Logits only from the first answer token on: prompts are often far longer than answers.
        first = max(0, int(scored[:, 1].min()) - 1)
        with torch.inference_mode():
            try:
                logits = model(input_ids=ids, attention_mask=mask,
                               logits_to_keep=torch.arange(first, width - 1, device=device)).logits
            except TypeError:  # a model without logits_to_keep
                logits = model(input_ids=ids, attention_mask=mask).logits[:, first:width - 1]
            target = labels[:, first + 1:]
            nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                    ignore_index=-100, reduction="sum")
        total += float(nll)
        count += int((target != -100).sum())
    return total, count


# ---- streaming both models side by side ----------------------------------------------------------
class _TokenStream:
    """One answer, one token per `step()`, with its own KV cache and its own seeded random generator, so
    two streams can be interleaved on one model (the adapter switched between them) and draw the same
    random numbers."""

    def __init__(self, tok, prompt_ids, settings: GenerationSettings, stop_ids: list[int]):
        import torch
        from transformers import DynamicCache
        from transformers.generation import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                                             TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

        self.tok = tok
        self.settings = settings
        self.stop_ids = set(stop_ids)
        self.all_ids = prompt_ids  # (1, n): the prompt, then the answer so far
        self.next_input = prompt_ids
        self.cache = DynamicCache()
        self.answer: list[int] = []
        self.done = settings.max_new_tokens <= 0
        self.rng = torch.Generator(device=prompt_ids.device).manual_seed(settings.seed)
        procs = []
        if settings.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
        if settings.do_sample:
            procs.append(TemperatureLogitsWarper(settings.temperature))
            if settings.top_k:
                procs.append(TopKLogitsWarper(settings.top_k))
            if settings.top_p < 1.0:
                procs.append(TopPLogitsWarper(settings.top_p))
        self.processors = LogitsProcessorList(procs)

    def step(self, model) -> None:
        import torch

        with torch.inference_mode():
            out = model(input_ids=self.next_input, past_key_values=self.cache, use_cache=True)
            scores = self.processors(self.all_ids, out.logits[:, -1, :].float())
            if self.settings.do_sample:
                token = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=self.rng)
            else:
                token = scores.argmax(dim=-1, keepdim=True)
        self.cache = out.past_key_values
        tid = int(token)
        if tid in self.stop_ids:
            self.done = True
            return
        self.answer.append(tid)
        self.next_input = token
        self.all_ids = torch.cat([self.all_ids, token], dim=1)
        if len(self.answer) >= self.settings.max_new_tokens:
            self.done = True

    @property
    def cut(self) -> bool:
        """It stopped at the token limit, not at its end-of-answer token."""
        return self.done and len(self.answer) >= self.settings.max_new_tokens > 0

    def text(self, final: bool = False) -> str:
        text = whole_text(self.tok, self.answer).lstrip()  # as the final one will be: no jump at the end
        if not final:
            return text
        return text.rstrip() + (CUT_MARK if self.cut else "")


def stream_pair(pair: ModelPair, prompt: str | list[dict], settings: GenerationSettings | None = None,
                order: tuple[str, str] = ("base", "finetuned"), tokens_per_switch: int = 4) -> Iterator[tuple[str, str]]:
    """Partial answers of the two models in `order`, growing side by side, with identical settings and
    seed; the last yield holds the final answers. The caller holds the device for the whole stream.

    Each model takes `tokens_per_switch` tokens in turn: `disable_adapter()` walks every layer of the
    model, which costs about as much as a token (32 ms on a 24-layer model on an H100), so switching every
        token would nearly double the time. (PEFT's mixed batches, both models as rows of one batch with no
    switching, were no faster on an H100 and twice as slow on a CPU.)
    """
    settings = settings or GenerationSettings()
    tok = pair.tokenizer
    text = _prompt_text(tok, prompt)
    prompt_ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(pair.device)
    streams = {}
    for which in order:
        with pair.use(which) as m:
            streams[which] = _TokenStream(tok, prompt_ids, settings, stop_token_ids(m, tok))
    while not all(s.done for s in streams.values()):
        for which in order:
            one = streams[which]
            if one.done:
                continue
            with pair.use(which) as m:
                for _ in range(max(1, tokens_per_switch)):
                    one.step(m)
                    if one.done:
                        break
        yield tuple(streams[w].text() for w in order)  # type: ignore[misc]
    yield tuple(streams[w].text(final=True) for w in order)  # type: ignore[misc]


def stream_answer(pair: ModelPair, prompt: str | list[dict], which: str = "finetuned",
                  settings: GenerationSettings | None = None, should_stop: Callable[[], bool] | None = None,
                  tokens_per_yield: int = 1) -> Iterator[str]:
    """One model's answer as it grows (the Chat tab): the adapter stays as `which` wants it for the whole
    answer. `should_stop` is asked between tokens; the last yield is the final text, with CUT_MARK when
    the answer reached the token limit. The caller holds the device."""
    settings = settings or GenerationSettings()
    tok = pair.tokenizer
    prompt_ids = tok(_prompt_text(tok, prompt), return_tensors="pt", add_special_tokens=False)["input_ids"]
    with pair.use(which) as model:
        stream = _TokenStream(tok, prompt_ids.to(pair.device), settings, stop_token_ids(model, tok))
        while not stream.done and not (should_stop and should_stop()):
            for _ in range(max(1, tokens_per_yield)):
                stream.step(model)
                if stream.done:
                    break
            yield stream.text()
    yield stream.text(final=True)
