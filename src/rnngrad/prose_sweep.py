"""The scorecard's table rows (numbers through rnngrad.prose.fmt). The sentences about
the sweep's design, the horizon test's power and the scorecard are in
report/prose.md.j2 (rnngrad.sentences)."""

from __future__ import annotations

import pandas as pd

from rnngrad.findings.design import VERDICT_WORDS
from rnngrad.findings.scorecard import ScorecardSummary
from rnngrad.prose import fmt
from rnngrad.sentences import Sentences

__all__ = ["agreement_text", "scorecard_rows"]


def agreement_text(summary: ScorecardSummary) -> str:
    """'4 agree in outcome and 1 does not (they differ on ...)', or why none compare: the
    sentence `agreement` of report/prose.md.j2."""
    return Sentences()("agreement", summary=summary)


def scorecard_rows(card: pd.DataFrame) -> pd.DataFrame:
    """findings.scorecard rows for the report's table."""
    if not len(card):
        return card

    def ours(r) -> str:
        words = VERDICT_WORDS.get(r.ours, r.ours)
        return f"{words} ({int(r.our_seeds)})" if r.ours in VERDICT_WORDS else words

    def agrees(v) -> str:
        return "–" if pd.isna(v) else ("yes" if bool(v) else "**no**")

    return pd.DataFrame(
        {
            "source": [f"@{k}" for k in card["key"]],
            "task": card["task"],
            "T": card["length"],
            "model": card["model"],
            "variant": [f"`{v}`" if v else "–" for v in card["variant"]],
            "published": [
                VERDICT_WORDS.get(o, o) + ("" if pd.isna(v) else f" ({fmt(v)})")
                for o, v in zip(card["outcome"], card["value"], strict=True)
            ],
            "ours": [ours(r) for r in card.itertuples(index=False)],
            "budget": [fmt(b, 2) for b in card["budget_ratio"]],
            "agrees": [agrees(v) for v in card["agrees"]],
            "checked": ["yes" if c else "unchecked" for c in card["checked"]],
        }
    )
