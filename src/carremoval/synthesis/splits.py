"""Train/val/test splits by leakage group, stable when data is added.

Each group gets a score u = hash(seed, group) in [0, 1): test if u < test, val if u < test + val, else train.
A group's split depends only on its own name, so adding data never moves an existing group. With few groups a
split can come out empty or thin (14 cut-outs give val 2 on average, and sometimes none); then the group nearest to
that split's interval (by score, from the largest other split) is moved into it until it holds `min_groups`.
That fallback is deterministic too, and it stops as soon as hashing alone fills every split.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

from carremoval.io import InputError

SPLITS = ("train", "val", "test")


def group_score(seed: int, group: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, group)."""
    digest = hashlib.sha256(f"{seed}\x00{group}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def intervals(val: float, test: float) -> dict[str, tuple[float, float]]:
    if val < 0 or test < 0 or val + test >= 1:
        raise InputError(f"split fractions: val ({val}) and test ({test}) must be >= 0 with val + test < 1")
    return {"test": (0.0, test), "val": (test, test + val), "train": (test + val, 1.0)}


def assign_splits(
    groups: Iterable[str], seed: int, val: float, test: float, kind: str, min_groups: int = 1
) -> dict[str, str]:
    """{group: split}; each split gets at least `min_groups` groups (fewer when there are not 3x as many
    groups, but never none). `kind` (e.g. "cut-out") names the data in errors."""
    unique = sorted(set(groups))
    if len(unique) < len(SPLITS):
        raise InputError(f"{kind}s: {len(unique)} source group(s); train, val and test need at least 3")
    bounds = intervals(val, test)
    scores = {group: group_score(seed, group) for group in unique}
    assignment = {group: next(name for name, (low, high) in bounds.items() if low <= u < high)
                  for group, u in scores.items()}
    minimum = max(1, min(min_groups, len(unique) // len(SPLITS)))
    for split in SPLITS:
        while sum(1 for name in assignment.values() if name == split) < minimum:
            assignment[nearest_from_largest(assignment, scores, bounds, split)] = split
    return assignment


def nearest_from_largest(
    assignment: dict[str, str], scores: dict[str, float], bounds: dict[str, tuple[float, float]], split: str
) -> str:
    """The group of the largest other split whose score lies nearest to `split`'s interval."""
    sizes = {name: sum(1 for s in assignment.values() if s == name) for name in SPLITS if name != split}
    donor = max(sorted(sizes), key=lambda name: sizes[name])
    low, high = bounds[split]
    candidates = [group for group, name in assignment.items() if name == donor]
    return min(candidates, key=lambda group: (max(low - scores[group], scores[group] - high, 0.0), group))
