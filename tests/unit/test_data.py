"""Loading and validating the wine-quality CSVs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from modelops_training.data import (
    CONTINUOUS_FEATURES,
    DATA_DIR_ENV,
    FEATURES,
    FILES,
    LABEL,
    RED_FILE,
    WHITE_FILE,
    DataError,
    build_frame,
    fingerprint_files,
    load_wine,
    parse_wine_csv,
)

HEADER = (
    '"fixed acidity";"volatile acidity";"citric acid";"residual sugar";"chlorides";"free sulfur dioxide";'
    '"total sulfur dioxide";"density";"pH";"sulphates";"alcohol";"quality"'
)
ROW_GOOD = "7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;7"
ROW_BAD = "7.8;0.88;0;2.6;0.098;25;67;0.9968;3.2;0.68;9.8;5"


def write_pair(directory: Path, red: str, white: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RED_FILE).write_text(red)
    (directory / WHITE_FILE).write_text(white)
    return directory


def test_loads_the_uci_files(wine_data_dir: Path) -> None:
    data = load_wine(wine_data_dir)
    assert list(data.X.columns) == FEATURES
    assert len(data.frame) == 1599 + 4898
    assert data.frame["is_red"].value_counts().to_dict() == {0: 4898, 1: 1599}
    assert str(data.frame["is_red"].dtype) == "int64"
    assert all(str(data.frame[name].dtype) == "float64" for name in CONTINUOUS_FEATURES)
    # SOURCE.md: quality >= 7 is 199 + 18 red and 880 + 175 + 5 white wines
    assert int(data.y.sum()) == 199 + 18 + 880 + 175 + 5
    assert data.source == str(wine_data_dir)


def test_environment_variable_names_the_directory(
    wine_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(wine_data_dir))
    assert load_wine().source == str(wine_data_dir)


def test_label_and_is_red_from_tiny_files(tmp_path: Path) -> None:
    directory = write_pair(tmp_path, f"{HEADER}\n{ROW_GOOD}\n", f"{HEADER}\n{ROW_BAD}\n{ROW_GOOD}\n")
    frame = load_wine(directory).frame
    assert frame["is_red"].tolist() == [1, 0, 0]
    assert frame[LABEL].tolist() == [1, 0, 1]
    assert frame["fixed_acidity"].tolist() == [7.4, 7.8, 7.4]


def test_fingerprint_follows_the_bytes(tmp_path: Path) -> None:
    one = write_pair(tmp_path / "one", f"{HEADER}\n{ROW_GOOD}\n", f"{HEADER}\n{ROW_BAD}\n")
    two = write_pair(tmp_path / "two", f"{HEADER}\n{ROW_GOOD}\n", f"{HEADER}\n{ROW_BAD}\n")
    three = write_pair(tmp_path / "three", f"{HEADER}\n{ROW_GOOD}\n", f"{HEADER}\n{ROW_GOOD}\n")
    assert load_wine(one).fingerprint == load_wine(two).fingerprint
    assert load_wine(one).fingerprint != load_wine(three).fingerprint
    assert len(load_wine(one).fingerprint) == 64


def test_fingerprint_of_the_published_files(wine_data_dir: Path) -> None:
    contents = {name: (wine_data_dir / name).read_bytes() for name in FILES}
    assert {name: hashlib.sha256(content).hexdigest() for name, content in contents.items()} == FILES
    assert load_wine(wine_data_dir).fingerprint == fingerprint_files(contents)


def test_missing_file_is_named(tmp_path: Path, wine_data_dir: Path) -> None:
    shutil.copy(wine_data_dir / RED_FILE, tmp_path / RED_FILE)
    with pytest.raises(DataError, match=rf"{WHITE_FILE}: file not found"):
        load_wine(tmp_path)


@pytest.mark.parametrize(
    ("white", "problem"),
    [
        ("", r"file is empty"),
        (HEADER.replace('"pH"', '"ph"') + f"\n{ROW_GOOD}\n", r"wrong header"),
        (HEADER.replace(";", ",") + f"\n{ROW_GOOD}\n", r"wrong header"),
        (HEADER.replace(';"quality"', "") + f"\n{ROW_GOOD}\n", r"wrong header"),
        (f"{HEADER}\n", r"no data rows"),
        (
            f"{HEADER}\n{ROW_GOOD}\n{ROW_BAD.replace('3.2', 'abc')}\n",
            r"non-numeric value 'abc' in column 'pH' on line 3",
        ),
        (
            f"{HEADER}\n{ROW_GOOD.replace('9.4', 'inf')}\n",
            r"non-numeric value 'inf' in column 'alcohol' on line 2",
        ),
        (
            f"{HEADER}\n{ROW_GOOD.replace(';0.076;', ';;')}\n",
            r"missing value in column 'chlorides' on line 2",
        ),
        (
            f"{HEADER}\n{ROW_GOOD.replace(';0.076;', '; ;')}\n",
            r"missing value in column 'chlorides' on line 2",
        ),
        (f"{HEADER}\n{ROW_GOOD};1;2\n", r"line 2 has 14 fields, expected 12"),
        (f"{HEADER}\n{ROW_GOOD}\n7.4;0.7\n", r"line 3 has 2 fields, expected 12"),
    ],
)
def test_bad_input_names_file_and_problem(tmp_path: Path, white: str, problem: str) -> None:
    directory = write_pair(tmp_path, f"{HEADER}\n{ROW_GOOD}\n", white)
    with pytest.raises(DataError, match=rf"{WHITE_FILE}: .*{problem}"):
        load_wine(directory)


def test_parse_accepts_a_byte_order_mark_and_crlf() -> None:
    frame = parse_wine_csv(f"\ufeff{HEADER}\r\n{ROW_GOOD}\r\n".encode(), "x.csv")
    assert frame["quality"].tolist() == [7.0]


def test_build_frame_orders_red_first() -> None:
    red = parse_wine_csv(f"{HEADER}\n{ROW_BAD}\n".encode(), "red")
    white = parse_wine_csv(f"{HEADER}\n{ROW_GOOD}\n".encode(), "white")
    frame = build_frame(red, white)
    assert list(frame.columns) == [*FEATURES, "quality", LABEL]
    assert frame[["is_red", LABEL]].to_numpy().tolist() == [[1, 0], [0, 1]]
