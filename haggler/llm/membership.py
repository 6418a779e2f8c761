"""Membership inference from token log-probabilities: was a text in what the model learned?

**Min-k%** (Shi et al., 2023; the attack open-unlearning's privleak uses): a text's score is the
mean of its k% lowest token log-probabilities. A text the model memorised has no surprising
token, so its lowest ones are still high; a text it never saw has a few tokens it could not
guess. Higher score: more likely a member. **AUC** then says how well the score separates two
sets (1.0: every member above every non-member; 0.5: no better than chance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["auc", "min_k_percent"]


def min_k_percent(logprobs: Sequence[float], k: float = 0.2) -> float:
    """The mean of the `k` share (0 < k <= 1) of lowest values of `logprobs`, at least one."""
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    if not logprobs:
        raise ValueError("min-k% needs at least one token log-probability")
    lowest = sorted(logprobs)[: max(1, math.ceil(k * len(logprobs)))]
    return sum(lowest) / len(lowest)


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """The probability that a random positive scores above a random negative (ties count half):
    the area under the ROC curve, as the Mann-Whitney statistic."""
    if not positives or not negatives:
        raise ValueError("AUC needs at least one positive and one negative score")
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))
