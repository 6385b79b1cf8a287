"""`NewFilmsDataset`: films added to the catalogue after training, which inference scores
from their content alone (`kedro run --pipelines inference --params new_films=<file>`).

A CSV in the layout of MovieLens' movies.csv: `movieId,title,genres`, the title ending
in the release year in parentheses (`Heat (1995)`), genres separated by `|`. Every field
the content model reads must be there: a row without an integer id, a title, a release
year or a genre is refused, naming the file, line and column, before any model is loaded.
Whether an id is new and each genre one the model knows is checked against the model's
catalogue by the inference node (`add_new_films`), with the same file and line.

Loads a table of item_id (the file's movie id), title, year, genres ("A|B") and `where`
(file and line, for messages); with no file configured, an empty table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io import DatasetError

from maskrec.datasets._optional_file import OptionalFileDataset
from maskrec.datasets.readers import YEAR_IN_TITLE

COLUMNS = ["item_id", "title", "year", "genres", "where"]
YEARS = (1870, 2100)  # a release year outside these is a typo, not a film


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"item_id": pd.Series(dtype="int64"), "title": pd.Series(dtype=str),
                         "year": pd.Series(dtype="int64"), "genres": pd.Series(dtype=str),
                         "where": pd.Series(dtype=str)})  # fmt: skip


class NewFilmsDataset(OptionalFileDataset):
    param = "new_films"

    def _empty(self) -> pd.DataFrame:
        return _empty()

    def _read(self, path: Path) -> pd.DataFrame:
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
            raise DatasetError(f"{path}: cannot be parsed as CSV ({error})") from None
        missing = [c for c in ("movieId", "title", "genres") if c not in table.columns]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing}; found {list(table.columns)} (the layout of MovieLens' movies.csv)")  # fmt: skip
        rows, lines = [], {}
        for index, row in table.iterrows():
            line = index + 2  # the header is line 1
            where = f"{path}, line {line}"
            film = _film_id(row["movieId"], where)
            if film in lines:
                raise DatasetError(f"{where}, column 'movieId': film {film} is already on line {lines[film]}")  # fmt: skip
            lines[film] = line
            rows.append((film, *_title_and_year(row["title"], where), _genres(row["genres"], where), where))  # fmt: skip
        return pd.DataFrame(rows, columns=COLUMNS) if rows else _empty()


def _film_id(value: str, where: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise DatasetError(f"{where}, column 'movieId': {value!r} is not a movie id (a non-negative integer)")  # fmt: skip
    return int(text)


def _title_and_year(value: str, where: str) -> tuple[str, int]:
    match = YEAR_IN_TITLE.match(value.strip())
    if not value.strip():
        raise DatasetError(f"{where}, column 'title': missing")
    if match is None or not match["title"].strip():
        raise DatasetError(f"{where}, column 'title': {value!r} does not end in the release year, as 'Heat (1995)'")  # fmt: skip
    year = int(match["year"])
    if not YEARS[0] <= year <= YEARS[1]:
        raise DatasetError(f"{where}, column 'title': release year {year} is outside {YEARS[0]}-{YEARS[1]}")  # fmt: skip
    return match["title"].strip(), year


def _genres(value: str, where: str) -> str:
    genres = [g.strip() for g in value.split("|")]
    if not value.strip() or value.strip() == "(no genres listed)" or not all(genres):
        raise DatasetError(f"{where}, column 'genres': {value!r} lists no genre (genres separated by '|', e.g. 'Comedy|Drama')")  # fmt: skip
    return "|".join(genres)
