"""The paper's performance retention ratio, the one place it is computed (stage 2 per run, the
report per table cell)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def performance_retention_ratio(decentralized: float, centralized: float) -> float:
    """PRR = decentralized (student, `*_KD`) ÷ centralized (teacher); NaN when the teacher scores 0
    (undefined: `prr_undefined` says why; JSON files hold null)."""
    return decentralized / centralized if centralized > 0 else float("nan")


def prr_undefined(evals: Mapping[str, Any]) -> dict[str, str | None]:
    """`eval/prr_undefined` for results.json: why the PRR in `evals` is undefined (NaN: the teacher
    scored 0), None when it is defined, nothing when `evals` hold no PRR.

    results.json writes an undefined PRR as null (strict JSON); the reason beside it tells a teacher
    that never succeeded from a PRR that was never measured. None removes the reason of an earlier
    stage 2 of the run (`update_results` drops None fields). Kept out of the logged metrics, which
    are numbers.
    """
    if "eval/prr" not in evals:
        return {}
    defined = math.isfinite(evals["eval/prr"])
    return {"eval/prr_undefined": None if defined else "teacher scored 0 (centralized): student / teacher is undefined"}
