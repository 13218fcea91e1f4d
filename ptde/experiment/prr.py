"""The paper's performance retention ratio, the one place it is computed (stage 2 per run, the
report per table cell)."""

from __future__ import annotations


def performance_retention_ratio(decentralized: float, centralized: float) -> float:
    """PRR = decentralized (student, `*_KD`) ÷ centralized (teacher); NaN when the teacher scores 0."""
    return decentralized / centralized if centralized > 0 else float("nan")
