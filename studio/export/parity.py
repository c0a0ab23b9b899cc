"""Does the written GGUF answer like the merged model? Load it back with transformers' own GGUF reader
(which dequantizes Q8_0 / Q4_0 to float) and compare, on a few prompts:

- next-token agreement: along the merged model's own greedy answer, the share of positions where the
  GGUF model's most likely next token is the same (teacher-forced, so one early difference does not
  count for everything after it);
- same answers: the share of prompts whose whole greedy answer is identical.

Prompts: a few of the run's validation prompts (its task) and a few of the bundled general questions
(a fine-tuned task often has one-word answers, which alone would compare very few positions).
"""

from __future__ import annotations

from pathlib import Path

from studio.messages import Msg

N_PROMPTS = 4  # of each kind
MAX_NEW_TOKENS = 32


def parity_prompts(run_dir: str | Path | None, n: int = N_PROMPTS) -> list[list[dict]]:
    """Up to `n` validation prompts of the run, then `n` general questions spread over the bundled set."""
    from studio.evaluate.forgetting import general_rows
    from studio.evaluate.rows import validation_rows

    prompts: list[list[dict]] = []
    if run_dir is not None:
        try:
            prompts = [r.messages for r in validation_rows(run_dir)[:n]]
        except Exception:
            prompts = []
    rows = general_rows()
    return prompts + [m for _, m, _ in rows[:: max(1, len(rows) // n)]][:n]


def load_gguf(path: str | Path):
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(path)
    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()


def _answer_ids(model, tok, prompt_ids, stop: list[int], max_new_tokens: int) -> list[int]:
    import torch

    with torch.inference_mode():
        out = model.generate(input_ids=prompt_ids, attention_mask=torch.ones_like(prompt_ids), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=stop, pad_token_id=tok.pad_token_id,
                             temperature=None, top_p=None, top_k=None)
    return out[0, prompt_ids.shape[1]:].tolist()


def _argmax_along(model, ids) -> list[int]:
    import torch

    with torch.inference_mode():
        return model(input_ids=ids).logits[0].argmax(-1).tolist()


def reference_answers(reference, tok, prompts: list[list[dict]], max_new_tokens: int = MAX_NEW_TOKENS) -> list[tuple]:
    """(prompt ids, greedy answer ids, the reference's next-token choices along it) per prompt: computed
    once, then every file is compared with it."""
    import torch

    from studio.evaluate.generate import prepare_tokenizer, stop_token_ids
    from studio.models.chat import render_prompt

    prepare_tokenizer(tok)
    stop = stop_token_ids(reference, tok)
    out = []
    for messages in prompts:
        prompt_ids = tok(render_prompt(tok, messages), return_tensors="pt", add_special_tokens=False)["input_ids"]
        answer = _answer_ids(reference, tok, prompt_ids, stop, max_new_tokens)
        # The next token after the prompt and after each answer token but the last.
        full = torch.cat([prompt_ids, torch.tensor([answer], dtype=prompt_ids.dtype)], dim=1)
        start = prompt_ids.shape[1] - 1
        out.append((prompt_ids, answer, _argmax_along(reference, full)[start:start + len(answer)], stop))
    return out


def compare_with(candidate, tok, refs: list[tuple]) -> dict:
    """{"next_token_agreement", "same_answers", "n", "positions"} of `candidate` against reference_answers()."""
    import torch

    agree = positions = same = 0
    for prompt_ids, answer, ref_next, stop in refs:
        same += _answer_ids(candidate, tok, prompt_ids, stop, max(1, len(answer))) == answer
        full = torch.cat([prompt_ids, torch.tensor([answer], dtype=prompt_ids.dtype)], dim=1)
        start = prompt_ids.shape[1] - 1
        cand_next = _argmax_along(candidate, full)[start:start + len(answer)]
        agree += sum(a == b for a, b in zip(ref_next, cand_next))
        positions += len(ref_next)
    n = len(refs)
    return {"next_token_agreement": agree / positions if positions else None,
            "same_answers": same / n if n else None, "n": n, "positions": positions}


def compare(reference, candidate, tok, prompts: list[list[dict]], max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """`candidate` against `reference` on `prompts` (see the module's docstring)."""
    return compare_with(candidate, tok, reference_answers(reference, tok, prompts, max_new_tokens))


def gguf_parity(merged_dir: str | Path, gguf_files: list[Path], run_dir: str | Path | None = None,
                progress=None) -> list[dict]:
    """One entry per file: {"type", "file", "size_bytes", "next_token_agreement", "same_answers", "n"}."""
    import gc

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged_dir = Path(merged_dir)
    tok = AutoTokenizer.from_pretrained(merged_dir)
    reference = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    refs = reference_answers(reference, tok, parity_prompts(run_dir))
    del reference
    gc.collect()
    out = []
    for k, path in enumerate(gguf_files):
        path = Path(path)
        candidate = load_gguf(path)
        entry = {"type": gguf_type_of(path), "file": path.name, "size_bytes": path.stat().st_size,
                 **compare_with(candidate, tok, refs)}
        out.append(entry)
        del candidate
        gc.collect()
        if progress:
            progress((k + 1) / len(gguf_files), Msg("export.progress.parity", type=entry["type"]))
    return out


def gguf_type_of(path: Path) -> str:
    """The type a file of ours was written as: `<run>-<type>.gguf`."""
    return Path(path).stem.rsplit("-", 1)[-1]


def parity_msg(entry: dict) -> Msg:
    return Msg("export.gguf.parity", type=entry["type"].upper(), size=entry["size_bytes"] / 2**20,
               agree=(entry["next_token_agreement"] or 0) * 100, same=(entry["same_answers"] or 0) * 100,
               n=entry["n"])
