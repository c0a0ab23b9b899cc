"""Row lengths in tokens, as the model will see them: rendered with the tokenizer's chat template.

Rendering 100,000 rows through Jinja costs more than the tokenizing itself, so the template is
rendered once per sequence of roles with empty contents (its "skeleton": special tokens, role names,
a default system prompt), and a row's length is that skeleton's length plus its contents' lengths,
tokenized in batches by the fast tokenizer. For ChatML-style templates (SmolLM2, Qwen) special
tokens separate the contents, so the sum is exact; for others it is within a token or two per
message. The template check (`template_check.py`) renders the rows near the cutoff for real.

Most rows are far below the cutoff, and tokenizing is the slowest part of cleaning, so rows are
first given an upper bound that needs no tokenizer: every token of a byte-level BPE (GPT-2, Llama 3,
Qwen, SmolLM2), SentencePiece-with-byte-fallback or WordPiece vocabulary spells at least one UTF-8
byte, plus one for a SentencePiece word-start marker. Only rows whose bound reaches the cutoff need
an exact count. The bound is checked against every row that is counted exactly, and if a
tokenizer ever breaks it, every row is counted.
"""

from __future__ import annotations

from studio.data.rows import Row, prompt_messages

BATCH = 4096


class TokenCounter:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.templated = bool(getattr(tokenizer, "chat_template", None))
        self.bound_holds = True  # turned off for good when a count exceeds its bound
        self._skeletons: dict[tuple, int] = {}

    def count(self, rows: list[Row], batch_size: int = BATCH) -> list[int]:
        """Exact tokens per row (also stored in `row.tokens`). Preference rows count the prompt plus
        the longer of the two answers."""
        out: list[int] = []
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            sequences = [_sequences(r.data) for r in chunk]
            flat = [m["content"] if isinstance(m, dict) else m for seqs in sequences for seq in seqs for m in seq]
            lengths = iter(encode_lengths(self.tokenizer, flat))
            for row, seqs in zip(chunk, sequences):
                n = max(sum(next(lengths) for _ in seq) + self._skeleton(seq) for seq in seqs)
                row.tokens = n
                out.append(n)
                if self.bound_holds and n > self.upper_bound(row.data):
                    self.bound_holds = False
        return out

    def upper_bound(self, data: dict) -> int:
        """A length no row can exceed in tokens, from its UTF-8 size alone."""
        return max(sum((len(c) if c.isascii() else len(c.encode("utf-8", "surrogatepass"))) + 1
                       for c in (m["content"] if isinstance(m, dict) else m for m in seq)) + self._skeleton(seq)
                   for seq in _sequences(data))

    def _skeleton(self, seq: list) -> int:
        if not (self.templated and isinstance(seq[0], dict)):
            return 0
        roles = tuple(m["role"] for m in seq)
        if roles not in self._skeletons:
            msgs = [{"role": r, "content": ""} for r in roles]
            try:
                text = self.tokenizer.apply_chat_template(msgs, tokenize=False)
                self._skeletons[roles] = encode_lengths(self.tokenizer, [text])[0]
            except Exception:  # a template that rejects this role order: the template check reports it
                self._skeletons[roles] = 4 * len(roles)
        return self._skeletons[roles]


def count_tokens(rows: list[Row], tokenizer) -> list[int]:
    return TokenCounter(tokenizer).count(rows)


def _sequences(data: dict) -> list[list]:
    """What gets tokenized for a row: its conversation (two for a preference row), or its text."""
    if "messages" in data:
        return [data["messages"]]
    if "chosen" in data:
        prompt = prompt_messages(data)
        return [prompt + [{"role": "assistant", "content": data[k]}] for k in ("chosen", "rejected")]
    return [[data["text"]]]


def encode_lengths(tokenizer, texts: list[str]) -> list[int]:
    """Token counts of many strings at once, through the Rust tokenizer when there is one. No BOS or
    EOS is added: a rendered template already holds the ones the model sees (as TRL tokenizes it)."""
    if not texts:
        return []
    unique = list(dict.fromkeys(texts))  # the same system prompt or instruction on many rows is tokenized once
    if len(unique) < len(texts):
        lengths = dict(zip(unique, encode_lengths(tokenizer, unique)))
        return [lengths[t] for t in texts]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        return [len(e) for e in encode(texts, add_special_tokens=False)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(x) for x in ids]


def token_offsets(tokenizer, texts: list[str]) -> list[list[int]]:
    """Where each token starts in its text (character offsets), for cutting texts at token boundaries.
    Through the Rust tokenizer's offsets when there is one; otherwise the tokens are spread evenly over
    the characters (a slow tokenizer has no offsets; the blocks are then about, not exactly, that long)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [[a for a, _ in e.offsets] for e in backend.encode_batch(texts, add_special_tokens=False)]
    out = []
    for text, n in zip(texts, encode_lengths(tokenizer, texts)):
        out.append([len(text) * k // max(1, n) for k in range(n)])
    return out
