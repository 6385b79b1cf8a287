"""Readers of interaction logs, returning one normalised shape.

interactions: user_id (int64, or text for a log with text ids), item_id (likewise), rating
              float64 (NaN for implicit feedback), timestamp int64 (seconds), in file order
              (the order breaks timestamp ties later on).
items:        item_id, title str, year Int64 (nullable), genres str ("A|B", "" if none), and
              feature_<name> float64 for a log's numeric item features.

One path: `read_interaction_log` (the table of interactions, validated by
`_validate_interactions`, and the item table, by `_item_table`). A log of one's own uses
it with its own column names; MovieLens's csv releases are its preset `MOVIELENS_CSV`; ml-1m
and ml-100k parse their own file formats, then go through the same validator and item table
with the same preset's rules. Files are parsed by fast typed parsers first; only when a
value is wrong is the file read again as text, to quote the line and value exactly (so a
25M-row file is not parsed twice when it is clean).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

logger = logging.getLogger(__name__)


RATING_RANGE = (0.5, 5.0)
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
YEAR_IN_TITLE = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")


class MovieLensFormatError(ValueError):
    """A MovieLens file is missing or malformed; the message names file, line and value."""


@dataclass(frozen=True)
class Layout:
    """One on-disk layout: which files it needs and how to read them."""

    name: str
    ratings_file: str
    items_file: str
    read: Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _validate_interactions(
    raw: pd.DataFrame,
    path: Path,
    header_lines: int,
    file_columns: dict[str, str] | None = None,
    rating_range: tuple[float, float] | None = RATING_RANGE,
    text_ids: bool = False,
    unit: str = "line",
) -> pd.DataFrame:
    """Turn text or typed columns into the normalised interactions table, or explain why not.

    `header_lines` converts a 0-based row index into the 1-based line number in the file
    (`unit`: "row" for Parquet, which has no lines); `file_columns` maps our column names
    to the file's header, so messages use the latter. MovieLens presets pass their rating
    range and integer ids; a log of one's own (`read_interaction_log`) may have text ids
    (`text_ids`: a column whose values are not all whole numbers keeps them as strings),
    any finite rating, or no `rating` column at all (implicit feedback: rating NaN).
    """

    def where(row: int, column: str) -> str:
        name = (file_columns or {}).get(column, column)
        return f"{path}, {unit} {row + 1 + header_lines}, column '{name}'"

    if raw.empty:
        raise MovieLensFormatError(
            f"{path}: no ratings in the file"
            + (" (a header line and nothing after it)" if header_lines else "")
        )
    out = {
        column: parse_ids(raw[column], lambda row, c=column: where(row, c), text_ids)
        for column in ("user_id", "item_id")
    }

    # without a rating column: implicit feedback, what was consumed, not how it was liked
    has_ratings = "rating" in raw
    out["rating"] = _parse_ratings(raw["rating"], where, rating_range) if has_ratings else pd.Series(np.nan, index=raw.index)  # fmt: skip
    out["timestamp"] = _parse_timestamps(raw["timestamp"], where)
    return pd.DataFrame(out)


def parse_ids(
    values: pd.Series, where: Callable[[int], str], text_ids: bool = False
) -> pd.Series:
    """One column of original ids: integers (int64) when every value is a whole number,
    else, with `text_ids`, the values as text (ids such as "u-17" or "B00X4WHP5E"); a
    missing or empty id, or (without `text_ids`) one that is not an integer, is an error
    naming `where(row)`. Interaction logs and given split targets read ids this way."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise MovieLensFormatError(f"{where(_first_bad(missing))}: missing value")
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna().to_numpy() | (numeric.to_numpy(dtype=float) % 1 != 0)
    if text_ids and bad.any():
        text = values.astype(str).str.strip()
        empty = (text == "").to_numpy()
        if empty.any():
            raise MovieLensFormatError(f"{where(_first_bad(empty))}: empty id")
        return text.astype(object)
    if bad.any():
        row = _first_bad(bad)
        raise MovieLensFormatError(
            f"{where(row)}: id {_show(values.iloc[row])} is not an integer"
        )
    _check_fits_int64(numeric, values, where, "id")
    return numeric.astype("int64")


def _parse_ratings(
    values: pd.Series,
    where: Callable[[int, str], str],
    rating_range: tuple[float, float] | None,
) -> pd.Series:
    """Ratings as float64: numbers, inside `rating_range` (MovieLens) or, for a log of
    one's own (None), any finite number (a weight, a count)."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise MovieLensFormatError(
            f"{where(_first_bad(missing), 'rating')}: missing value"
        )
    rating = pd.to_numeric(values, errors="coerce")
    bad = rating.isna().to_numpy()
    if bad.any():
        row = _first_bad(bad)
        raise MovieLensFormatError(
            f"{where(row, 'rating')}: rating {_show(values.iloc[row])} is not a number"
        )
    if rating_range is None:
        bad, problem = ~np.isfinite(rating.to_numpy(dtype=float)), "is not finite"
    else:
        low, high = rating_range
        bad, problem = ((rating < low) | (rating > high)).to_numpy(), f"is outside [{low}, {high}]"  # fmt: skip
    if bad.any():
        row = _first_bad(bad)
        raise MovieLensFormatError(
            f"{where(row, 'rating')}: rating {_show(values.iloc[row])} {problem}"
        )
    return rating.astype("float64")


def _parse_timestamps(values: pd.Series, where: Callable[[int, str], str]) -> pd.Series:
    """Epoch seconds as int64. A column whose first value is not a number is read as
    ISO-8601 dates instead (converted to UTC seconds)."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise MovieLensFormatError(
            f"{where(_first_bad(missing), 'timestamp')}: missing value"
        )
    if pd.api.types.is_datetime64_any_dtype(values):  # Parquet's own timestamp type
        stamps = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")  # fmt: skip
        return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("int64")  # fmt: skip
    numeric = pd.to_numeric(values, errors="coerce")
    if pd.notna(numeric.iloc[0]):
        as_float = numeric.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = np.isnan(as_float) | (as_float % 1 != 0) | (as_float < 0)
        if bad.any():
            row = _first_bad(bad)
            raise MovieLensFormatError(
                f"{where(row, 'timestamp')}: cannot parse {_show(values.iloc[row])} as a "
                "whole, non-negative number of epoch seconds"
            )
        _check_fits_int64(numeric, values, lambda row: where(row, "timestamp"), "timestamp")  # fmt: skip
        return numeric.astype("int64")
    parsed = pd.to_datetime(
        values.astype(str), errors="coerce", utc=True, format="ISO8601"
    )
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = _first_bad(bad)
        raise MovieLensFormatError(
            f"{where(row, 'timestamp')}: cannot parse {_show(values.iloc[row])} as an "
            "ISO-8601 date"
        )
    epoch = pd.Timestamp(0, tz="UTC")
    return ((parsed - epoch) // pd.Timedelta(seconds=1)).astype("int64")


def _check_fits_int64(
    numeric: pd.Series, values: pd.Series, where: Callable[[int], str], what: str
) -> None:
    """Whole numbers beyond 64 bits parse as floats; name the first instead of overflowing."""
    too_large = numeric.abs().to_numpy(dtype=float) >= 2.0**63
    if too_large.any():
        row = _first_bad(too_large)
        raise MovieLensFormatError(
            f"{where(row)}: {what} {_show(values.iloc[row])} does not fit in a 64-bit integer"
        )


def _show(value: object) -> str:
    """A cell as the user would recognise it in the file: quoted text, not a numpy repr."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return repr(str(value))


def _split_title(titles: pd.Series) -> tuple[pd.Series, pd.Series]:
    """'Heat (1995)' -> ('Heat', 1995); titles without a year keep year <NA>."""
    parts = titles.fillna("").astype(str).str.extract(YEAR_IN_TITLE)
    title = parts["title"].where(parts["title"].notna(), titles.fillna("").astype(str))
    year = pd.to_numeric(parts["year"], errors="coerce").astype("Int64")
    return title.str.strip(), year


def _read_table(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise MovieLensFormatError(f"{path}: cannot be parsed: {exc}") from exc


def read_csv_layout(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ml-latest-small, ml-20m, ml-25m, ml-32m: ratings.csv + movies.csv with headers, read
    as a log of one's own with MovieLens's column names, integer ids, ratings in [0.5, 5]
    and the year in the title (`MOVIELENS_CSV`)."""
    return read_interaction_log(
        folder / "ratings.csv", folder / "movies.csv", *MOVIELENS_CSV
    )


def read_ml1m_layout(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ml-1m: ratings.dat and movies.dat, '::'-separated, latin-1, no header."""
    ratings_path, movies_path = folder / "ratings.dat", folder / "movies.dat"
    # Splitting on ':' with the C parser and keeping every other field is ~20x faster
    # than pandas' python engine on '::'; ratings.dat holds no other colons.
    raw = _read_table(
        ratings_path, sep=":", header=None, dtype=str, encoding="latin-1",
        usecols=[0, 2, 4, 6], names=["user_id", "x1", "item_id", "x2", "rating", "x3", "timestamp"],
    )  # fmt: skip
    interactions = _validate_interactions(raw, ratings_path, header_lines=0)

    lines = movies_path.read_text(encoding="latin-1").splitlines()
    fields = [line.split("::", 2) for line in lines if line.strip()]
    for number, parts in enumerate(fields, start=1):
        if len(parts) != 3:
            raise MovieLensFormatError(
                f"{movies_path}, line {number}: expected 'id::title::genres', got {lines[number - 1]!r}"
            )
    table = pd.DataFrame(fields, columns=["movieId", "title", "genres"])
    return interactions, _item_table(table, 0, "line", *MOVIELENS_CSV, text_ids=False, path=movies_path)  # fmt: skip


def read_ml100k_layout(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ml-100k: u.data (tab) and u.item (pipe, latin-1, 19 genre flags)."""
    ratings_path, items_path = folder / "u.data", folder / "u.item"
    raw = _read_table(
        ratings_path, sep="\t", header=None, dtype=str,
        names=["user_id", "item_id", "rating", "timestamp"],
    )  # fmt: skip
    interactions = _validate_interactions(raw, ratings_path, header_lines=0)

    columns = [
        "movieId",
        "title",
        "release_date",
        "video_release",
        "url",
        *ML100K_GENRES,
    ]
    table = _read_table(
        items_path, sep="|", header=None, dtype=str, encoding="latin-1",
        names=columns, keep_default_na=False,
    )  # fmt: skip
    flags = (
        table[list(ML100K_GENRES[1:])].apply(pd.to_numeric, errors="coerce").fillna(0)
    )
    genres = flags.astype(bool).apply(
        lambda row: "|".join(
            g for g, on in zip(ML100K_GENRES[1:], row, strict=True) if on
        ),
        axis=1,
    )
    movies = pd.DataFrame({"movieId": table["movieId"], "title": table["title"], "genres": genres})  # fmt: skip
    items = _item_table(movies, 0, "line", *MOVIELENS_CSV, text_ids=False, path=items_path)  # fmt: skip
    # Some u.item titles carry no year; fall back to the release date's year.
    release_year = pd.to_datetime(
        table["release_date"], errors="coerce", format="%d-%b-%Y"
    ).dt.year
    items["year"] = items["year"].fillna(release_year.astype("Int64"))
    return interactions, items


LAYOUTS = (
    Layout("ml-100k", "u.data", "u.item", read_ml100k_layout),
    Layout("ml-1m", "ratings.dat", "movies.dat", read_ml1m_layout),
    Layout("movielens-csv", "ratings.csv", "movies.csv", read_csv_layout),
)


def detect_layout(folder: Path) -> tuple[Layout, Path]:
    """Find which layout `folder` (or its single sub-folder, as archives extract) holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MovieLensFormatError(f"{folder}: no such folder")
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    for place in candidates:
        for layout in LAYOUTS:
            ratings = place / layout.ratings_file
            items = place / layout.items_file
            if ratings.is_file() and items.is_file():
                return layout, place
            if ratings.is_file() or items.is_file():
                present, absent = (
                    (ratings, items) if ratings.is_file() else (items, ratings)
                )
                raise MovieLensFormatError(
                    f"{place}: found {present.name} ({layout.name} layout) but "
                    f"{absent.name} is missing"
                )
    expected = "; ".join(
        f"{x.name}: {x.ratings_file} + {x.items_file}" for x in LAYOUTS
    )
    raise MovieLensFormatError(
        f"{folder}: no MovieLens layout found. Expected one of: {expected}"
    )


def read_movielens_folder(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Read any supported layout; returns (interactions, items, layout name)."""
    layout, place = detect_layout(folder)
    logger.info("Reading %s (%s layout)", place, layout.name)
    started = time.monotonic()
    interactions, items = layout.read(place)
    logger.info("Read %s interactions and %s items in %.1f s", f"{len(interactions):,}", f"{len(items):,}", time.monotonic() - started)  # fmt: skip
    return interactions, items, layout.name


# --- a log of one's own ------------------------------------------------------------------
# MovieLens releases are presets of the same path: a table of (user, item, time[, rating])
# validated by `_validate_interactions`, and an item table normalised to (item_id, title,
# year, genres). A log of one's own names its columns (`LogColumns`, from the catalog's
# `columns`, i.e. `--params columns.user=...`), may use text ids, and may lack ratings.

LOG_SUFFIXES = (".csv", ".parquet", ".pq")
LOG_FILES = (
    "interactions",
    "items",
)  # a folder source: interactions.<csv|parquet> [+ items]


@dataclass(frozen=True)
class LogColumns:
    """The names of a log's columns (defaults: what `--params source=<file>` alone reads)."""

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    rating: str = "rating"  # optional: without it the log is implicit feedback
    title: str = "title"  # the item table's optional columns
    categories: str = "categories"
    year: str = "year"
    separator: str = "|"  # between categories in one cell
    features: str = ""  # numeric item columns, ';'-separated (e.g. "price;weight")

    def __post_init__(self) -> None:
        empty = [name for name in ("user", "item", "timestamp", "rating", "separator") if not getattr(self, name)]  # fmt: skip
        if empty:
            raise TypeError(f"columns.{empty[0]} is empty")

    def feature_names(self) -> list[str]:
        return [name.strip() for name in self.features.split(";") if name.strip()]


@dataclass(frozen=True)
class LogFormat:
    """What a table's values may be: a log of one's own by default (text ids allowed, any
    finite rating or none); MovieLens's releases are the preset `MOVIELENS_CSV`."""

    text_ids: bool = True
    rating_range: tuple[float, float] | None = None  # None: any finite number
    rating_required: bool = False
    year_in_title: bool = False  # "Heat (1995)": the year is read from the title
    hint: str = "Name the log's own columns with --params columns.user=...,columns.item=...,columns.timestamp=..."  # fmt: skip


# MovieLens's own names and rules: every MovieLens layout's ratings and films go through
# the same validation and item table as a log (ml-1m and ml-100k after their own parsing)
MOVIELENS_CSV = (
    LogColumns(user="userId", item="movieId", categories="genres"),
    LogFormat(text_ids=False, rating_range=RATING_RANGE, rating_required=True, year_in_title=True, hint=""),
)  # fmt: skip


def is_log_file(path: Path) -> bool:
    return Path(path).suffix.lower() in LOG_SUFFIXES


def find_log(folder: Path) -> tuple[Path, Path | None] | None:
    """`interactions.<csv|parquet>` in `folder` and its `items.<csv|parquet>` if any."""
    found = {}
    for stem in LOG_FILES:
        matches = [folder / f"{stem}{suffix}" for suffix in LOG_SUFFIXES if (folder / f"{stem}{suffix}").is_file()]  # fmt: skip
        if len(matches) > 1:
            raise MovieLensFormatError(f"{folder}: both {matches[0].name} and {matches[1].name}; keep one")  # fmt: skip
        found[stem] = matches[0] if matches else None
    return (found["interactions"], found["items"]) if found["interactions"] else None


def _read_any(path: Path, as_text: bool = False) -> tuple[pd.DataFrame, int, str]:
    """A CSV (header line; typed by Arrow's multi-threaded parser where every value allows,
    or with `as_text` every cell as pandas reads text, so a message can quote the cell as
    written) or Parquet table, with what turns a 0-based row into the position a message
    names: (frame, header lines, unit)."""
    if not path.is_file():
        raise MovieLensFormatError(f"{path}: no such file")
    if path.suffix.lower() != ".csv":
        try:
            return pd.read_parquet(path), 0, "row"
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise MovieLensFormatError(f"{path}: cannot be read: {exc}") from exc
    if not as_text:
        try:
            return pa_csv.read_csv(path).to_pandas(), 1, "line"
        except (pa.ArrowException, OSError, ValueError):
            pass  # pandas' parser names the line that breaks the table
    return _read_table(path, dtype=str, keep_default_na=True), 1, "line"


def log_has_ratings(path: Path, columns: LogColumns) -> bool:
    """Whether the log has its rating column, from the header or schema alone."""
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", errors="replace") as file:
            header = file.readline().rstrip("\r\n")
        return columns.rating in [name.strip().strip('"') for name in header.split(",")]
    import pyarrow.parquet as pq  # noqa: PLC0415 - Parquet only

    return columns.rating in pq.read_schema(path).names


def read_interaction_log(
    path: Path,
    items_path: Path | None,
    columns: LogColumns,
    fmt: LogFormat = LogFormat(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A table of interactions in the normalised shape: (interactions, items). By default a
    log of one's own: ids that are all whole numbers are read as integers, others as text;
    no rating column means implicit feedback (rating NaN); no item table means items known
    by their ids alone. `fmt` holds a preset's stricter rules (MovieLens: `MOVIELENS_CSV`)."""
    raw, header, unit = _read_any(path)
    names = {columns.user: "user_id", columns.item: "item_id", columns.timestamp: "timestamp"}  # fmt: skip
    if columns.rating in raw or fmt.rating_required:
        names[columns.rating] = "rating"
    missing = [c for c in names if c not in raw]
    if missing:
        raise MovieLensFormatError(f"{path}: missing column(s) {missing}; found {list(raw.columns)}" + (f". {fmt.hint}" if fmt.hint else ""))  # fmt: skip

    def validated(frame: pd.DataFrame) -> pd.DataFrame:
        return _validate_interactions(
            frame[list(names)].rename(columns=names), path, header, file_columns={ours: theirs for theirs, ours in names.items()},
            rating_range=fmt.rating_range, text_ids=fmt.text_ids, unit=unit,
        )  # fmt: skip

    try:
        interactions = validated(raw)
    except MovieLensFormatError:
        if unit != "line":
            raise
        # read again as text, so the message quotes the bad cell as the file writes it
        # (a typed parse may have turned 99999999999999999999 into 1e20); a clean file is
        # parsed once
        interactions = validated(_read_any(path, as_text=True)[0])
    if items_path is None:
        ids = pd.Series(pd.unique(interactions["item_id"]))
        items = pd.DataFrame({"item_id": ids, "title": "", "year": pd.array([pd.NA] * len(ids), dtype="Int64"), "genres": ""})  # fmt: skip
        return interactions, items
    text = interactions["item_id"].dtype == object
    return interactions, _item_table(*_read_any(items_path), columns, fmt, text_ids=text, path=items_path)  # fmt: skip


def _item_table(
    raw: pd.DataFrame, header: int, unit: str, columns: LogColumns, fmt: LogFormat,
    text_ids: bool, path: Path,
) -> pd.DataFrame:  # fmt: skip
    """The item table, for every layout: id (typed as the interactions' item ids), title,
    year (a column, or from the title with `fmt.year_in_title`), categories (which become
    the genres every content feature reads; MovieLens's "(no genres listed)" is none) and
    the numeric features `columns.features` names."""

    def where(row: int, column: str) -> str:
        return f"{path}, {unit} {row + 1 + header}, column '{column}'"

    if columns.item not in raw:
        raise MovieLensFormatError(f"{path}: missing column {columns.item!r} (the item id); found {list(raw.columns)}")  # fmt: skip
    values = raw[columns.item]
    missing = values.isna().to_numpy()
    if missing.any():
        raise MovieLensFormatError(f"{where(_first_bad(missing), columns.item)}: missing value")  # fmt: skip
    if text_ids:
        ids = values.astype(str).str.strip()
    else:
        ids = pd.to_numeric(values, errors="coerce")
        bad = ids.isna().to_numpy() | (ids.to_numpy(dtype=float) % 1 != 0)
        if bad.any():
            row = _first_bad(bad)
            raise MovieLensFormatError(f"{where(row, columns.item)}: id {_show(values.iloc[row])} is not an integer, as the interactions' item ids are")  # fmt: skip
        ids = ids.astype("int64")
    title = raw[columns.title].fillna("").astype(str).str.strip() if columns.title in raw else pd.Series("", index=raw.index)  # fmt: skip
    year = pd.array([pd.NA] * len(raw), dtype="Int64")
    if fmt.year_in_title:
        title, year = _split_title(title)
    if columns.year in raw:
        given = raw[columns.year]
        numeric = pd.to_numeric(given, errors="coerce")
        bad = (given.notna() & ~given.astype(str).str.strip().isin(["", "nan", "None"]) & (numeric.isna() | (numeric % 1 != 0))).to_numpy()  # fmt: skip
        if bad.any():
            row = _first_bad(bad)
            raise MovieLensFormatError(f"{where(row, columns.year)}: year {_show(given.iloc[row])} is not a whole number")  # fmt: skip
        year = numeric.astype("Int64")
    genres = pd.Series("", index=raw.index)
    if columns.categories in raw:
        cells = raw[columns.categories].fillna("").astype(str)
        genres = cells.map(lambda cell: "|".join(part.strip() for part in cell.split(columns.separator) if part.strip() not in ("", "(no genres listed)")))  # fmt: skip
    items = pd.DataFrame(
        {"item_id": ids, "title": title, "year": year, "genres": genres}
    )
    for (
        name
    ) in columns.feature_names():  # numeric features: a number or empty (unknown)
        if name not in raw:
            raise MovieLensFormatError(f"{path}: missing column {name!r} (named in columns.features); found {list(raw.columns)}")  # fmt: skip
        given = raw[name]
        numeric = pd.to_numeric(given, errors="coerce")
        blank = given.isna() | given.astype(str).str.strip().isin(["", "nan", "None"])
        bad = (~blank & (numeric.isna() | ~np.isfinite(numeric.fillna(0)))).to_numpy()
        if bad.any():
            row = _first_bad(bad)
            raise MovieLensFormatError(f"{where(row, name)}: {_show(given.iloc[row])} is not a finite number")  # fmt: skip
        items[f"feature_{name}"] = numeric.astype("float64")
    return items.drop_duplicates("item_id", keep="first").reset_index(drop=True)
