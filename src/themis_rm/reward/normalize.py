"""Per-group normalisation of one component's values (what GRPO does to the total, GDPO to each reward).

Values that are ``None`` (the component does not apply to that candidate) stay ``None`` and are left out of the
group's statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def normalize(values: Sequence[float | None], how: str) -> list[float | None]:
    """``none``: as is; ``group_z``: (x - mean) / std over the group (all 0 when every value is equal);
    ``rank``: average rank scaled to [0, 1] (ties share their mean rank; a lone value is 0.5)."""
    present = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    out: list[float | None] = [None] * len(values)
    if how == "none":
        return [None if v is None else float(v) for v in values]
    if not present:
        return out
    data = np.array([values[i] for i in present], dtype=np.float64)
    if how == "group_z":
        std = data.std()
        scaled = (data - data.mean()) / std if std > 1e-12 else np.zeros_like(data)
    elif how == "rank":
        scaled = (rankdata(data) - 1) / (len(data) - 1) if len(data) > 1 else np.full(1, 0.5)
    else:
        raise ValueError(f"unknown normalisation {how!r}")
    for i, value in zip(present, scaled.tolist(), strict=True):
        out[i] = float(value)
    return out
