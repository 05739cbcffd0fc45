"""The context-manager shape every local component shares: `with X(...) as x:` starts it, leaving stops it."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import NoReturn, Self


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


def interrupt_on_sigterm() -> None:
    """Let SIGTERM (what `timeout`, systemd or a CI runner send) take Ctrl-C's path: a KeyboardInterrupt
    in the main thread, so every with-block and finally of the program stops what it started (pods,
    shims, bridges) instead of the process dying with them still running."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def run_main(main: Callable[[], int | None]) -> NoReturn:
    """Run a program's main with SIGTERM taking Ctrl-C's path; exit with its status (130 if interrupted)."""
    interrupt_on_sigterm()
    try:
        status = main()
    except KeyboardInterrupt:
        print("interrupted: what was started is stopped", file=sys.stderr)  # noqa: T201
        sys.exit(130)
    sys.exit(status or 0)
