"""The UCI wine-quality data: a local copy or a verified download, validated, with a fingerprint."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DATA_DIR_ENV = "MODELOPS_DATA_DIR"
UCI_BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality"
# file name -> sha256 of the file as published by UCI (../shared/data/wine-quality/SOURCE.md)
FILES: dict[str, str] = {
    "winequality-red.csv": "57050ed70cee37ffe2617ad7a7717e4fbe71514c42341c781c1bbba93a7a21f5",
    "winequality-white.csv": "3edb25c969af6efe4715ff60629542f4e7a49f6c52be1f662a12647b8f5b4f14",
}
RED_FILE, WHITE_FILE = FILES

RAW_COLUMNS = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
    "quality",
]
CONTINUOUS_FEATURES = [name.replace(" ", "_") for name in RAW_COLUMNS[:-1]]
FEATURES = [*CONTINUOUS_FEATURES, "is_red"]
LABEL = "label"
GOOD_QUALITY = 7  # label = quality >= 7


class DataError(ValueError):
    """The wine-quality data is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class WineData:
    """Features (FEATURES, is_red as int), the binary label and where the data came from."""

    frame: pd.DataFrame
    fingerprint: str
    source: str

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[FEATURES]

    @property
    def y(self) -> pd.Series:
        return self.frame[LABEL]


def parse_wine_csv(content: bytes, source: str) -> pd.DataFrame:
    """Parse one UCI wine CSV (semicolon-separated, quoted header) into numeric columns; DataError if bad."""
    text = content.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"{source}: file is empty (expected a header line)")
    header = [name.strip().strip('"') for name in lines[0].split(";")]
    if header != RAW_COLUMNS:
        raise DataError(
            f"{source}: wrong header {header!r}; expected the {len(RAW_COLUMNS)} UCI columns {RAW_COLUMNS!r}"
        )
    for number, line in enumerate(lines[1:], start=2):
        fields = line.count(";") + 1
        if line.strip() and fields != len(RAW_COLUMNS):
            raise DataError(f"{source}: line {number} has {fields} fields, expected {len(RAW_COLUMNS)}")
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=";", dtype=str, keep_default_na=False, skip_blank_lines=True
        )
    except pd.errors.ParserError as e:
        raise DataError(f"{source}: malformed CSV: {e}") from e
    if frame.empty:
        raise DataError(f"{source}: no data rows after the header")
    return pd.DataFrame({column: _numeric_column(frame[column], column, source) for column in RAW_COLUMNS})


def _numeric_column(values: pd.Series, column: str, source: str) -> pd.Series:
    stripped = values.str.strip()
    missing = stripped == ""
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(f"{source}: missing value in column {column!r} on line {row + 2}")
    numbers = pd.to_numeric(stripped, errors="coerce")
    bad = numbers.isna() | ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{source}: non-numeric value {values.iloc[row]!r} in column {column!r} on line {row + 2}"
        )
    return numbers.astype(float)


def build_frame(red: pd.DataFrame, white: pd.DataFrame) -> pd.DataFrame:
    """Join red and white wines: underscore feature names, is_red (0/1), label = quality >= 7."""
    parts = []
    for raw, is_red in ((red, 1), (white, 0)):
        part = raw.rename(columns=dict(zip(RAW_COLUMNS[:-1], CONTINUOUS_FEATURES, strict=True)))
        part = part.assign(is_red=is_red)
        part[LABEL] = (part["quality"] >= GOOD_QUALITY).astype(int)
        parts.append(part[[*FEATURES, "quality", LABEL]])
    frame = pd.concat(parts, ignore_index=True)
    frame["is_red"] = frame["is_red"].astype("int64")
    return frame


def fingerprint_files(contents: dict[str, bytes]) -> str:
    """sha256 over the raw files: each file's name and its own sha256, in name order."""
    digest = hashlib.sha256()
    for name in sorted(contents):
        digest.update(f"{name}\0{hashlib.sha256(contents[name]).hexdigest()}\n".encode())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Where downloads are kept: $XDG_CACHE_HOME/modelops/wine-quality (~/.cache by default)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "modelops" / "wine-quality"


def resolve_data_dir(data_dir: Path | str | None = None) -> Path | None:
    """The local directory to read: the argument, else $MODELOPS_DATA_DIR, else None (download)."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    return Path(chosen) if chosen is not None else None


def read_files(data_dir: Path) -> dict[str, bytes]:
    """The raw bytes of both CSVs in `data_dir`, or DataError naming a missing file."""
    contents = {}
    for name in FILES:
        path = data_dir / name
        if not path.is_file():
            raise DataError(f"{path}: file not found (the data directory needs {' and '.join(FILES)})")
        contents[name] = path.read_bytes()
    return contents


def download(cache_dir: Path | None = None, base_url: str = UCI_BASE_URL, timeout: float = 30.0) -> Path:
    """Download both CSVs into `cache_dir` (verified by sha256) unless already there; return the directory."""
    cache_dir = cache_dir or default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, sha256 in FILES.items():
        target = cache_dir / name
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            continue
        url = f"{base_url.rstrip('/')}/{name}"
        log.info("downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                content = response.read()
        except (urllib.error.URLError, OSError) as e:
            raise DataError(
                f"could not download {url}: {e}. Without internet access, pass --data-dir DIR "
                f"(or set {DATA_DIR_ENV}) to a directory holding {' and '.join(FILES)}"
            ) from e
        actual = hashlib.sha256(content).hexdigest()
        if actual != sha256:
            raise DataError(f"{url}: sha256 {actual} does not match the published {sha256}; not using it")
        with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as tmp:
            tmp.write(content)
        Path(tmp.name).replace(target)
    return cache_dir


def load_wine(data_dir: Path | str | None = None, base_url: str = UCI_BASE_URL) -> WineData:
    """Load red and white wines from `data_dir` / $MODELOPS_DATA_DIR, or download them into the user cache."""
    local = resolve_data_dir(data_dir)
    directory = local if local is not None else download(base_url=base_url)
    contents = read_files(directory)
    red, white = (parse_wine_csv(contents[name], str(directory / name)) for name in (RED_FILE, WHITE_FILE))
    return WineData(
        frame=build_frame(red, white), fingerprint=fingerprint_files(contents), source=str(directory)
    )
