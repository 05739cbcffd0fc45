"""The download path against a real HTTP server on loopback (no internet needed)."""

from __future__ import annotations

import functools
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelops_training.data import DATA_DIR_ENV, FILES, RED_FILE, DataError, download, load_wine


class CountingHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append(self.path)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTP server on 127.0.0.1 serving a folder; yields (base URL, folder, requested paths)."""
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []
    handler = type("Handler", (CountingHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/wine", root, requests
    finally:
        server.shutdown()
        server.server_close()


def publish(root: Path, wine_data_dir: Path) -> None:
    (root / "wine").mkdir()
    for name in FILES:
        shutil.copy(wine_data_dir / name, root / "wine" / name)


def test_download_verifies_and_caches(file_server, wine_data_dir: Path, tmp_path: Path) -> None:
    base_url, root, requests = file_server
    publish(root, wine_data_dir)
    cache = tmp_path / "cache"
    assert download(cache, base_url=base_url) == cache
    assert {p.name for p in cache.iterdir()} == set(FILES)
    assert len(requests) == 2
    download(cache, base_url=base_url)
    assert len(requests) == 2  # verified files in the cache are not fetched again


def test_load_wine_downloads_when_no_directory_is_given(
    file_server, wine_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, root, _ = file_server
    publish(root, wine_data_dir)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = load_wine(base_url=base_url)
    assert data.source == str(tmp_path / "xdg" / "modelops" / "wine-quality")
    assert data.fingerprint == load_wine(wine_data_dir).fingerprint


def test_tampered_file_is_refused(file_server, wine_data_dir: Path, tmp_path: Path) -> None:
    base_url, root, _ = file_server
    publish(root, wine_data_dir)
    with (root / "wine" / RED_FILE).open("a") as f:
        f.write("7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5\n")
    with pytest.raises(DataError, match=rf"{RED_FILE}: sha256 .* does not match"):
        download(tmp_path / "cache", base_url=base_url)
    assert not (tmp_path / "cache" / RED_FILE).exists()


def test_unreachable_source_suggests_data_dir(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(DataError, match=r"could not download .*pass --data-dir DIR"):
        download(tmp_path / "cache", base_url=closed, timeout=5)
