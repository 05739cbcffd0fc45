"""The context-manager shape every local component shares: `with X(...) as x:` starts it, leaving stops it."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Managed:
    """start() on entry (returning self), close() on exit: stop(), plus whatever a subclass cleans up."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
