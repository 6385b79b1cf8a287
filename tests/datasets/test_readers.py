from __future__ import annotations

import pandas as pd
import pytest

from maskrec.datasets.readers import (
    MovieLensFormatError,
    detect_layout,
    read_movielens_folder,
)
from tests.conftest import (
    RATINGS,
    write_csv_layout,
    write_ml1m_layout,
    write_ml100k_layout,
)


@pytest.mark.parametrize(
    ("writer", "layout"),
    [
        (write_csv_layout, "movielens-csv"),
        (write_ml1m_layout, "ml-1m"),
        (write_ml100k_layout, "ml-100k"),
    ],
)
def test_every_layout_reads_to_the_same_normalised_tables(tmp_path, writer, layout):
    writer(tmp_path / "release")
    interactions, items, name = read_movielens_folder(tmp_path / "release")

    assert name == layout
    assert list(interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert interactions.dtypes.astype(str).tolist() == [
        "int64",
        "int64",
        "float64",
        "int64",
    ]
    expected = pd.DataFrame(RATINGS, columns=interactions.columns)
    if layout != "movielens-csv":  # .dat and u.data hold whole stars only
        expected["rating"] = expected["rating"].astype(int).astype(float)
    pd.testing.assert_frame_equal(interactions, expected)

    assert list(items.columns) == ["item_id", "title", "year", "genres"]
    heat = items.set_index("item_id").loc[10]
    assert heat["year"] == 1995 and heat["genres"] == "Action|Crime"
    assert heat["title"] in {"Heat", "Heat: The Movie"}
    no_year = items.set_index("item_id").loc[30]
    assert no_year["genres"] == ""
    # ml-100k falls back to the release date when the title has no year
    assert (
        (no_year["year"] == 1977) if layout == "ml-100k" else pd.isna(no_year["year"])
    )


def test_ml100k_reads_latin1_titles(tmp_path):
    write_ml100k_layout(tmp_path / "ml-100k")
    _, items, _ = read_movielens_folder(tmp_path / "ml-100k")
    assert items.set_index("item_id").loc[20, "title"] == "Amélie"


def test_layout_is_found_in_a_single_subfolder(tmp_path):
    write_csv_layout(tmp_path / "outer" / "ml-latest-small")
    layout, place = detect_layout(tmp_path / "outer")
    assert layout.name == "movielens-csv" and place.name == "ml-latest-small"


def test_folder_with_no_layout_lists_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        MovieLensFormatError,
        match=r"no MovieLens layout found.*u\.data.*ratings\.dat.*ratings\.csv",
    ):
        read_movielens_folder(tmp_path / "empty")


def test_missing_companion_file_is_named(tmp_path):
    folder = write_csv_layout(tmp_path / "r")
    (folder / "movies.csv").unlink()
    with pytest.raises(MovieLensFormatError, match="movies.csv is missing"):
        read_movielens_folder(folder)


def test_missing_column_is_named(tmp_path):
    folder = write_csv_layout(tmp_path / "r")
    frame = pd.read_csv(folder / "ratings.csv").drop(columns="rating")
    frame.to_csv(folder / "ratings.csv", index=False)
    with pytest.raises(
        MovieLensFormatError, match=r"ratings\.csv: missing column\(s\) \['rating'\]"
    ):
        read_movielens_folder(folder)


BAD_CELLS = [
    ("userId", "abc", r"line 3, column 'userId': id 'abc' is not an integer"),
    (
        "userId",
        "1234567890123456789012345",
        r"line 3, column 'userId': id '1234567890123456789012345' does not fit in a 64-bit integer",
    ),
    ("movieId", "", r"line 3, column 'movieId': missing value"),
    (
        "timestamp",
        "99999999999999999999",
        r"line 3, column 'timestamp': timestamp '99999999999999999999' does not fit",
    ),
    ("rating", "7", r"line 3, column 'rating': rating '7' is outside \[0.5, 5.0\]"),
    ("rating", "good", r"line 3, column 'rating': rating 'good' is not a number"),
    ("rating", "", r"line 3, column 'rating': missing value"),
    ("timestamp", "yesterday", r"line 3, column 'timestamp': cannot parse 'yesterday'"),
    ("timestamp", "1.5", r"line 3, column 'timestamp': cannot parse '1.5' as a whole"),
]


@pytest.mark.parametrize(("column", "value", "message"), BAD_CELLS)
def test_each_bad_cell_is_reported_with_file_line_column_and_value(
    tmp_path, column, value, message
):
    folder = write_csv_layout(tmp_path / "r")
    frame = pd.read_csv(folder / "ratings.csv", dtype=str)
    frame.loc[1, column] = value  # second data row = line 3 of the file
    frame.to_csv(folder / "ratings.csv", index=False)
    with pytest.raises(MovieLensFormatError, match=message) as error:
        read_movielens_folder(folder)
    assert "ratings.csv" in str(error.value)


@pytest.mark.parametrize(
    ("write", "ratings", "empty", "message"),
    [
        (write_csv_layout, "ratings.csv", "userId,movieId,rating,timestamp\n", r"ratings\.csv: no ratings in the file \(a header line"),
        (write_ml1m_layout, "ratings.dat", "", r"ratings\.dat: no ratings in the file"),
        (write_ml100k_layout, "u.data", "", r"u\.data: no ratings in the file"),
    ],
)  # fmt: skip
def test_a_ratings_file_without_rows_is_named(tmp_path, write, ratings, empty, message):
    folder = write(tmp_path / "r")
    (folder / ratings).write_text(empty)
    with pytest.raises(MovieLensFormatError, match=message):
        read_movielens_folder(folder)


def test_bad_line_in_dat_file_is_reported(tmp_path):
    folder = write_ml1m_layout(tmp_path / "ml-1m")
    lines = (folder / "ratings.dat").read_text().splitlines()
    lines[3] = "1::30::9::200"
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        MovieLensFormatError, match=r"ratings\.dat, line 4, column 'rating': rating '9'"
    ):
        read_movielens_folder(folder)


def test_iso_timestamps_are_accepted(tmp_path):
    folder = write_csv_layout(tmp_path / "r")
    frame = pd.read_csv(folder / "ratings.csv", dtype=str)
    frame["timestamp"] = "1970-01-01T00:01:40Z"
    frame.to_csv(folder / "ratings.csv", index=False)
    interactions, _, _ = read_movielens_folder(folder)
    assert (interactions["timestamp"] == 100).all()
