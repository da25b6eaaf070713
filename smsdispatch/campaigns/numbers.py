"""The set of numbers already in a campaign, at 8 bytes a number.

A Python set of a million ints costs about 64 MB; a sorted int64 array
costs 8. Lookups and additions go a chunk at a time, so numpy does the work.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


class NumberSet:
    def __init__(self, numbers: Iterable[int] = ()) -> None:
        self._sorted: npt.NDArray[np.int64] = np.unique(np.fromiter(numbers, dtype=np.int64))

    def __len__(self) -> int:
        return len(self._sorted)

    def add_new(self, numbers: list[int]) -> list[bool]:
        """For each number, whether it is new (and not repeated earlier in the
        list); the new ones are added."""
        keys = np.asarray(numbers, dtype=np.int64)
        fresh = np.zeros(len(keys), dtype=bool)
        if not len(keys):
            return []
        _, first = np.unique(keys, return_index=True)
        fresh[first] = True
        if len(self._sorted):
            at = np.searchsorted(self._sorted, keys)
            known = self._sorted[np.minimum(at, len(self._sorted) - 1)] == keys
            fresh &= ~known
        added = np.sort(keys[fresh])
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, added), added)
        return [bool(f) for f in fresh]
