"""The one HTTP health probe of the development harnesses (local cluster, MLflow, operator)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request


def probe(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    """Whether GET `url` answers 200 now; a refused connection or an error status is simply False."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
