"""A thread that writes what requests noted, at most once per period, off the request path."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable


class Flusher:
    """Calls `flush` in a daemon thread: at once when `notify` comes after a quiet spell, then at most once
    per `seconds` while notifications keep coming; and once more at interpreter exit. A request only
    notifies (an Event already set costs a flag check), so the writes it would have made (mmap values
    under a lock, a write system call) are made once for all the requests of a period."""

    def __init__(self, flush: Callable[[], None], seconds: float, name: str) -> None:
        self._flush = flush
        self._seconds = seconds
        self._name = name
        self._dirty = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """Something is waiting to be flushed."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
                    atexit.register(self._flush)
        if not self._dirty.is_set():
            self._dirty.set()

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            self._dirty.clear()
            self._flush()
            time.sleep(self._seconds)  # what requests note meanwhile waits for the next flush
