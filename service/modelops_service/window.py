"""A sliding window over the most recent input rows of one worker."""

from __future__ import annotations

import numpy as np


class SlidingWindow:
    """Ring buffer of the last `size` rows; `rows()` returns them (order does not matter to drift tests)."""

    def __init__(self, size: int, n_features: int) -> None:
        if size <= 0:
            raise ValueError(f"window size must be positive, got {size}")
        self.size = size
        self._buffer = np.empty((size, n_features), dtype=np.float64)
        self._next = 0
        self._count = 0
        self.total = 0  # rows ever added, to decide when the window test is due

    def __len__(self) -> int:
        return self._count

    def add(self, rows: np.ndarray) -> None:
        """Append rows, dropping the oldest ones beyond the window size."""
        n = rows.shape[0]
        self.total += n
        if n >= self.size:
            self._buffer[:] = rows[-self.size :]
            self._next, self._count = 0, self.size
            return
        end = self._next + n
        if end <= self.size:
            self._buffer[self._next : end] = rows
        else:
            split = self.size - self._next
            self._buffer[self._next :] = rows[:split]
            self._buffer[: n - split] = rows[split:]
        self._next = end % self.size
        self._count = min(self._count + n, self.size)

    def rows(self) -> np.ndarray:
        """A copy of the rows currently held."""
        if self._count < self.size:
            return self._buffer[: self._count].copy()
        return self._buffer.copy()
