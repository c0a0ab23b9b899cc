"""What the votes and ratings say: the fine-tuned model's win rate with a 95% Wilson interval (ties and
both-bad counted apart), overall and per voter, mean ratings with 95% intervals, and one sentence (a Msg
from the catalog) that a manager can read.

Why Wilson: with a few dozen votes the textbook interval p +- 1.96 sqrt(p(1-p)/n) runs past 0% or 100%
and collapses to zero width at 10/10; Wilson's stays inside [0, 1] and is honest about small samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from studio.messages import Msg

Z95 = 1.959963984540054
# Two-sided 95% Student t quantiles for 1-30 degrees of freedom; beyond, a Cornish-Fisher expansion.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there is no data."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def t95(df: int) -> float:
    if df <= 0:
        return float("inf")
    if df <= len(_T95):
        return _T95[df - 1]
    z = Z95
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_ci(values: list[float], lo: float = -math.inf, hi: float = math.inf) -> tuple[float, float, float]:
    """(mean, low, high): a 95% Student t interval, clipped to [lo, hi] (the rating scale)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, max(lo, -math.inf), min(hi, math.inf)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * sd / math.sqrt(n)
    return mean, max(lo, mean - half), min(hi, mean + half)


# ---- A/B votes ------------------------------------------------------------------------------------
@dataclass
class Tally:
    finetuned_wins: int = 0
    base_wins: int = 0
    ties: int = 0
    both_bad: int = 0
    voters: int = 0

    @property
    def decided(self) -> int:
        return self.finetuned_wins + self.base_wins

    @property
    def total(self) -> int:
        return self.decided + self.ties + self.both_bad

    @property
    def win_rate(self) -> float | None:
        return self.finetuned_wins / self.decided if self.decided else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.finetuned_wins, self.decided)

    @property
    def verdict(self) -> str:
        """none | improvement | worse | unclear: whether the interval excludes 50%."""
        if not self.decided:
            return "none"
        low, high = self.interval
        return "improvement" if low > 0.5 else "worse" if high < 0.5 else "unclear"

    def message(self) -> Msg:
        """What the votes say, in one sentence a manager can read (in whichever language reads it)."""
        if not self.decided:
            return Msg("eval.tally.none", total=self.total)
        low, high = self.interval
        votes = Msg("eval.tally.votes.one" if self.decided == 1 else "eval.tally.votes.many", n=self.decided)
        extra = Msg("eval.tally.extra", ties=self.ties, both_bad=self.both_bad) if self.ties or self.both_bad else ""
        return Msg("eval.tally.sentence", rate=100 * (self.win_rate or 0.0), low=100 * low, high=100 * high,
                   votes=votes, extra=extra, meaning=Msg(f"eval.verdict.{self.verdict}"))

    def sentence(self, lang: str = "en") -> str:
        return self.message().text(lang)

    def to_dict(self) -> dict:
        low, high = self.interval
        return {**asdict(self), "decided": self.decided, "total": self.total, "win_rate": self.win_rate,
                "ci_low": low, "ci_high": high, "verdict": self.verdict,
                "sentence": self.sentence("en"), "message": self.message().to_dict()}


def tally(records: list[dict]) -> Tally:
    t = Tally()
    voters = set()
    for rec in records:
        if rec.get("kind", "vote") != "vote":
            continue
        winner = rec.get("winner")
        if winner == "finetuned":
            t.finetuned_wins += 1
        elif winner == "base":
            t.base_wins += 1
        elif winner == "tie":
            t.ties += 1
        elif winner == "both_bad":
            t.both_bad += 1
        else:
            continue
        voters.add(rec.get("voter", ""))
    t.voters = len(voters)
    return t


def tally_by_voter(records: list[dict]) -> dict[str, Tally]:
    by: dict[str, list[dict]] = {}
    for rec in records:
        by.setdefault(rec.get("voter", ""), []).append(rec)
    return {voter: tally(recs) for voter, recs in sorted(by.items())}


def tally_table(records: list[dict]):
    """A pandas DataFrame: one row for everyone, then one per voter."""
    import pandas as pd

    rows = [{"voter": "all", **_row(tally(records))}]
    rows += [{"voter": v, **_row(t)} for v, t in tally_by_voter(records).items()]
    return pd.DataFrame(rows)


def _row(t: Tally) -> dict:
    low, high = t.interval
    return {"finetuned_wins": t.finetuned_wins, "base_wins": t.base_wins, "ties": t.ties, "both_bad": t.both_bad,
            "decided": t.decided, "win_rate": t.win_rate, "ci_low": low if t.decided else None,
            "ci_high": high if t.decided else None}


# ---- 1-5 ratings ---------------------------------------------------------------------------------
@dataclass
class RatingSummary:
    n: int = 0
    means: dict = field(default_factory=dict)  # model -> {"mean", "ci_low", "ci_high", "n"}
    difference: dict = field(default_factory=dict)  # fine-tuned minus base, paired by round and voter
    per_voter: dict = field(default_factory=dict)  # voter -> model -> mean

    @property
    def verdict(self) -> str:
        if self.n < 2 or not self.difference:
            return "none"
        low, high = self.difference["ci_low"], self.difference["ci_high"]
        return "improvement" if low > 0 else "worse" if high < 0 else "unclear"

    def message(self) -> Msg:
        if not self.n:
            return Msg("eval.ratings.none")

        def score(m):
            if self.n > 1:
                return Msg("eval.ratings.score_ci", mean=m["mean"], low=m["ci_low"], high=m["ci_high"])
            return Msg("eval.ratings.score", mean=m["mean"])

        return Msg("eval.ratings.sentence", ft=score(self.means["finetuned"]), base=score(self.means["base"]),
                   n=self.n, meaning=Msg(f"eval.ratings.verdict.{self.verdict}"))

    def sentence(self, lang: str = "en") -> str:
        return self.message().text(lang)

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict, "sentence": self.sentence("en"),
                "message": self.message().to_dict()}


def rating_summary(records: list[dict]) -> RatingSummary:
    ratings = [r for r in records if r.get("kind") == "rating" and isinstance(r.get("scores"), dict)]
    out = RatingSummary(n=len(ratings))
    if not ratings:
        return out
    for model in ("base", "finetuned"):
        values = [float(r["scores"][model]) for r in ratings]
        mean, low, high = mean_ci(values, 1.0, 5.0)
        out.means[model] = {"mean": mean, "ci_low": low, "ci_high": high, "n": len(values)}
    # Each rating scores both answers to one prompt: the paired difference cancels out how hard the
    # prompt was, so it tells a real difference apart from noise with fewer ratings.
    diffs = [float(r["scores"]["finetuned"]) - float(r["scores"]["base"]) for r in ratings]
    mean, low, high = mean_ci(diffs, -4.0, 4.0)
    out.difference = {"mean": mean, "ci_low": low, "ci_high": high, "n": len(diffs)}
    by_voter: dict[str, list[dict]] = {}
    for r in ratings:
        by_voter.setdefault(r.get("voter", ""), []).append(r)
    out.per_voter = {v: {m: sum(float(r["scores"][m]) for r in rs) / len(rs) for m in ("base", "finetuned")}
                     for v, rs in sorted(by_voter.items())}
    return out


def ratings_table(records: list[dict]):
    """A pandas DataFrame: mean rating per model, overall and per voter."""
    import pandas as pd

    s = rating_summary(records)
    rows = [{"voter": "all", "model": m, **v} for m, v in s.means.items()]
    rows += [{"voter": voter, "model": m, "mean": mean} for voter, means in s.per_voter.items()
             for m, mean in means.items()]
    return pd.DataFrame(rows, columns=["voter", "model", "mean", "ci_low", "ci_high", "n"])
