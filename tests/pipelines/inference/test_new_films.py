"""Films added after training (`NewFilmsDataset`, and inference's `add_new_films`): what is
read, and every malformed or missing content field refused with its file, line and
column before any model scores."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DatasetError

from maskrec.datasets import NewFilmsDataset
from maskrec.models.baselines import MostPopular, interaction_matrix
from maskrec.pipelines.inference.nodes import add_new_films
from maskrec.scoring import WithNewFilms
from tests.helpers import small_split

HEADER = "movieId,title,genres\n"


def load(tmp_path, text: str) -> pd.DataFrame:
    path = tmp_path / "new.csv"
    path.write_text(text)
    return NewFilmsDataset(file=str(path)).load()


def test_a_well_formed_file_is_read_with_titles_years_and_where(tmp_path):
    films = load(tmp_path, HEADER + '9001,"Heat, Again (2031)",Action|Crime\n9002,Quiet (2030), Drama \n')  # fmt: skip
    assert films[["item_id", "title", "year", "genres"]].values.tolist() == [
        [9001, "Heat, Again", 2031, "Action|Crime"], [9002, "Quiet", 2030, "Drama"],
    ]  # fmt: skip
    assert films["where"].tolist() == [f"{tmp_path / 'new.csv'}, line 2", f"{tmp_path / 'new.csv'}, line 3"]  # fmt: skip
    assert NewFilmsDataset().load().empty  # no file named: no new films


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "x12,Heat (2031),Action\n",
            "line 2, column 'movieId': 'x12' is not a movie id",
        ),
        ("9001,,Action\n", "line 2, column 'title': missing"),
        (
            "9001,Heat,Action\n",
            "line 2, column 'title': 'Heat' does not end in the release year",
        ),  # fmt: skip
        (
            "9001,Heat (3031),Action\n",
            "line 2, column 'title': release year 3031 is outside",
        ),  # fmt: skip
        ("9001,Heat (2031),\n", "line 2, column 'genres': '' lists no genre"),
        ("9001,Heat (2031),(no genres listed)\n", "line 2, column 'genres'"),
        ("9001,Heat (2031),Action||Drama\n", "line 2, column 'genres'"),
        (
            "9001,Heat (2031),Action\n9001,Cold (2031),Drama\n",
            "line 3, column 'movieId': film 9001 is already on line 2",
        ),  # fmt: skip
    ],
)
def test_each_malformed_field_is_refused_naming_file_line_and_column(tmp_path, rows, message):  # fmt: skip
    with pytest.raises(
        DatasetError, match=str(tmp_path).replace(".", r"\.") + ".*"
    ) as error:
        load(tmp_path, HEADER + rows)
    assert message in str(error.value)


def test_a_missing_column_or_file_is_refused(tmp_path):
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['genres'\]"):
        load(tmp_path, "movieId,title\n1,Heat (2031)\n")
    with pytest.raises(DatasetError, match="new_films=.*nope.csv: no such file"):
        NewFilmsDataset(file=str(tmp_path / "nope.csv")).load()


def _inputs(tmp_path, text: str, trained):
    data = small_split()
    return (load(tmp_path, HEADER + text), data["item_features"], trained["new_films_model"],
            trained["sasrec_model"], "sasrec", {"sasrec": {"valid_ndcg@10": 0.3, "temperature": 0.8}})  # fmt: skip


def test_films_the_catalogue_has_or_genres_it_never_saw_are_refused_before_scoring(tmp_path, trained):  # fmt: skip
    items = small_split()["item_features"]
    genre = next(
        c.removeprefix("genre_") for c in items.columns if c.startswith("genre_")
    )
    old = int(items["original_item_id"].iloc[0])
    with pytest.raises(ValueError, match=rf"line 2, column 'movieId': film {old} is already in the catalogue"):  # fmt: skip
        add_new_films(*_inputs(tmp_path, f"{old},Heat (2031),{genre}\n", trained))
    with pytest.raises(ValueError, match=r"line 3, column 'genres': 'Space Western' is not a genre of the catalogue"):  # fmt: skip
        add_new_films(*_inputs(tmp_path, f"90001,Heat (2031),{genre}\n90002,Cold (2031),{genre}|Space Western\n", trained))  # fmt: skip


def test_new_films_get_the_ids_after_the_catalogue_and_the_validation_temperature(tmp_path, trained):  # fmt: skip
    items = small_split()["item_features"]
    genre = next(
        c.removeprefix("genre_") for c in items.columns if c.startswith("genre_")
    )
    model, catalogue = add_new_films(*_inputs(tmp_path, f"90001,Heat (2031),{genre}\n", trained))  # fmt: skip
    assert isinstance(model, WithNewFilms) and model.temperature == 0.8
    assert model.new_items.n_items == len(items) + 1
    added = catalogue[catalogue["new_film"]]
    assert added[["item_id", "original_item_id", "title", "year"]].values.tolist() == [[len(items) + 1, 90001, "Heat", 2031]]  # fmt: skip
    assert added[f"genre_{genre}"].tolist() == [1]
    # no new films: the chosen model as it is, every film flagged as trained-on
    same, plain = add_new_films(NewFilmsDataset().load(), *_inputs(tmp_path, "", trained)[1:])  # fmt: skip
    assert same is trained["sasrec_model"] and not plain["new_film"].any()


def test_a_baseline_cannot_have_new_films_mixed_in(tmp_path, trained):
    data = small_split()
    popular = MostPopular.fit(interaction_matrix(data["train"]["item_ids"].tolist(), len(data["item_features"])))  # fmt: skip
    films, items, mixture, _, _, stats = _inputs(
        tmp_path, "90001,Heat (2031),Drama\n", trained
    )
    with pytest.raises(
        ValueError, match="'most_popular' is a baseline: name a sequence model"
    ):
        add_new_films(films, items, mixture, popular, "most_popular", stats)


def test_new_films_for_a_catalogue_with_text_ids_are_refused_saying_why(
    tmp_path, trained
):
    films, items, *rest = _inputs(tmp_path, "90001,Heat (2031),Drama\n", trained)
    text = items.assign(original_item_id="sku-" + items["original_item_id"].astype(str))
    with pytest.raises(ValueError, match="this run's items have text ids"):
        add_new_films(films, text, *rest)
