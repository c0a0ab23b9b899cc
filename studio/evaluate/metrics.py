"""Text metrics on (answer, reference) pairs: exact match, ROUGE-L, BLEU. Pure functions, no model.

Chinese needs care in both: rouge-score's default tokenizer drops every non-ASCII character (a Chinese
answer would score 0 against anything), and sacreBLEU's 13a tokenizer keeps a Chinese sentence as one
"word". So ROUGE-L splits CJK text into characters, and BLEU switches to sacreBLEU's `zh` tokenizer
when the references are Chinese.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import combinations

# CJK ideographs, extension A, compatibility ideographs, kana and hangul: one character is one token.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_RE = re.compile(f"[{_CJK}]")
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")  # a CJK character, or a run of other word characters


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text or ""))


def _is_trim(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return ch.isspace() or cat.startswith("P") or cat.startswith("Z")


def normalize(text: str) -> str:
    """Casefolded, inner whitespace collapsed, surrounding whitespace and punctuation trimmed
    ("Positive." == "positive"; Chinese quotation marks and full stops are trimmed the same way)."""
    text = unicodedata.normalize("NFKC", text or "")
    start, end = 0, len(text)
    while start < end and _is_trim(text[start]):
        start += 1
    while end > start and _is_trim(text[end - 1]):
        end -= 1
    return " ".join(text[start:end].split()).casefold()


def exact_match(answer: str, reference: str) -> float:
    return float(normalize(answer) == normalize(reference))


def contains(answer: str, reference: str) -> float:
    """1 when the normalized reference appears in the normalized answer: a fairer score for a model
    that answers in sentences ("The review is positive.") where exact match says 0."""
    ref = normalize(reference)
    return float(bool(ref) and ref in normalize(answer))


def tokenize(text: str) -> list[str]:
    """Words for Latin scripts, single characters for CJK; lowercased, punctuation dropped."""
    return _TOKEN_RE.findall(unicodedata.normalize("NFKC", text or "").casefold())


class _Tokenizer:
    """The object rouge-score wants: anything with `.tokenize(text) -> list[str]`."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)


_scorer = None


def rouge_l(answer: str, reference: str) -> float:
    """ROUGE-L F1 in [0, 1] (rouge-score's LCS-based F-measure), CJK-aware."""
    global _scorer
    if _scorer is None:
        from rouge_score import rouge_scorer

        _scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer())
    return float(_scorer.score(reference or "", answer or "")["rougeL"].fmeasure)


def bleu_tokenizer(references: list[str]) -> str:
    """sacreBLEU's `zh` tokenizer when any reference holds Chinese characters, its default `13a` otherwise."""
    return "zh" if any(has_cjk(r) for r in references) else "13a"


def bleu(answers: list[str], references: list[str]) -> float:
    """Corpus BLEU on a 0-100 scale (sacreBLEU's convention), one reference per answer. With answers of
    fewer than 4 words (a label, a number), BLEU counts only the n-gram orders they have
    (`effective_order`): otherwise a set of perfect one-word answers would score 0."""
    from sacrebleu.metrics import BLEU

    if not answers:
        return 0.0
    metric = BLEU(tokenize=bleu_tokenizer(references), effective_order=True)
    return float(metric.corpus_score(list(answers), [list(references)]).score)


def text_scores(answers: list[str], references: list[str]) -> dict:
    """The generation metrics of one model over a set: means of per-row scores, plus corpus BLEU."""
    n = len(answers)
    if n != len(references):
        raise ValueError("answers and references must have the same length")
    if n == 0:
        return {"n": 0, "exact_match": 0.0, "contains": 0.0, "rouge_l": 0.0, "bleu": 0.0}
    return {
        "n": n,
        "exact_match": sum(exact_match(a, r) for a, r in zip(answers, references)) / n,
        "contains": sum(contains(a, r) for a, r in zip(answers, references)) / n,
        "rouge_l": sum(rouge_l(a, r) for a, r in zip(answers, references)) / n,
        "bleu": bleu(answers, references),
    }


def agreement(answers: list[str]) -> dict:
    """How much N answers to the same prompt agree: mean pairwise ROUGE-L, the share of identical pairs
    (after normalization), and the share of answers equal to the most common one."""
    n = len(answers)
    if n < 2:
        return {"n": n, "mean_rouge_l": 1.0, "identical_pairs": 1.0, "majority_share": 1.0}
    pairs = list(combinations(answers, 2))
    norm = [normalize(a) for a in answers]
    most = max(norm.count(x) for x in set(norm))
    return {
        "n": n,
        "mean_rouge_l": sum(rouge_l(a, b) for a, b in pairs) / len(pairs),
        "identical_pairs": sum(normalize(a) == normalize(b) for a, b in pairs) / len(pairs),
        "majority_share": most / n,
    }
