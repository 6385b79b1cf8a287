"""Item alignment between releases: by id where they share ids, else by title and year;
ambiguous names are left unmatched and counted, never guessed."""

from __future__ import annotations

import pandas as pd
import pytest

from maskrec.alignment import align_items, normalise_title, title_aliases


def catalogue(rows: list[tuple[int, str, int | None]]) -> pd.DataFrame:
    """(original id, title, year) rows; model ids 1..N in that order."""
    frame = pd.DataFrame(rows, columns=["original_item_id", "title", "year"])
    return frame.assign(item_id=range(1, len(frame) + 1), year=frame["year"].astype("Int64"))  # fmt: skip


def test_titles_normalise_accents_case_and_punctuation():
    assert normalise_title("Amélie (Fabuleux destin d'Amélie Poulain, Le)") == "amelie fabuleux destin d amelie poulain le"  # fmt: skip
    assert normalise_title("  Se7en!! ") == "se7en"


def test_aliases_are_the_other_names_a_release_gives_a_film():
    assert title_aliases("Postman, The (Postino, Il)") == {"postman the postino il", "postman the", "postino il"}  # fmt: skip
    assert "leon the professional" in title_aliases("Professional, The (a.k.a. Leon: The Professional)")  # fmt: skip
    assert "star wars" in title_aliases("Star Wars: Episode IV - A New Hope")


def test_title_alignment_matches_exact_titles_then_unambiguous_aliases():
    target = catalogue([(1, "Toy Story", 1995), (2, "Postino, Il", 1994), (3, "Star Wars", 1977),
                        (4, "Heat", 1995), (5, "Nowhere Film", 2001)])  # fmt: skip
    source = catalogue([(10, "Postman, The (Postino, Il)", 1994), (11, "Toy Story", 1995),
                        (12, "Star Wars: Episode IV - A New Hope", 1977), (13, "Heat", 1995),
                        (14, "Heat", 1986)])  # fmt: skip
    matched, report = align_items(target, source, "title")
    by_target = dict(zip(matched["item_id"], zip(matched["source_item_id"], matched["matched_by"], strict=True), strict=True))  # fmt: skip
    assert by_target == {1: (2, "title"), 2: (1, "title_alias"), 3: (3, "title_alias"), 4: (4, "title")}  # fmt: skip
    assert report["matched"] == {"title": 2, "title_alias": 2}
    assert (report["no_match"], report["ambiguous_unmatched"]) == (1, 0)
    assert report["coverage"] == pytest.approx(0.8)


def test_ambiguous_names_are_left_unmatched_and_counted():
    # Source lists two films of the same name and year; target lists one film twice.
    target = catalogue([(1, "Twin Film", 1990), (2, "Chasing Amy", 1997), (3, "Chasing Amy", 1997)])  # fmt: skip
    source = catalogue([(7, "Twin Film", 1990), (8, "Twin Film", 1990), (9, "Chasing Amy", 1997)])  # fmt: skip
    matched, report = align_items(target, source, "title")
    assert matched.empty
    assert report["ambiguous_unmatched"] == 3 and report["no_match"] == 0


def test_auto_aligns_by_id_only_where_the_ids_name_the_same_films():
    shared = catalogue(
        [(1, "Toy Story", 1995), (2, "Jumanji", 1995), (3, "Heat", 1995)]
    )
    renamed = catalogue([(1, "Toy Story", 1995), (2, "Jumanji", 1995), (3, "Heat", 1995), (4, "Casino", 1995)])  # fmt: skip
    reordered = catalogue([(4, "Casino", 1995), (3, "Heat", 1995), (2, "Jumanji", 1995), (1, "Toy Story", 1995)])  # fmt: skip
    matched, report = align_items(shared, reordered)
    assert report["method"] == "id" and report["id_title_agreement"] == 1.0
    assert matched["source_item_id"].tolist() == [
        4,
        3,
        2,
    ]  # model ids differ, films agree
    own_ids = catalogue([(1, "GoldenEye", 1995), (2, "Four Rooms", 1995), (3, "Toy Story", 1995)])  # fmt: skip
    matched, report = align_items(
        own_ids, renamed
    )  # same ids, other films: ML-100K vs ML-1M
    assert report["method"] == "title" and report["id_title_agreement"] < 0.5
    assert matched["source_item_id"].tolist() == [1]  # Toy Story, by title


def test_a_log_with_text_ids_aligns_with_a_release_with_integer_ids():
    release = catalogue([(1, "Toy Story", 1995), (2, "Heat", 1995)])
    log = catalogue([("sku-1", "Heat", 1995), ("2", "Toy Story", 1995)])  # text ids
    matched, report = align_items(log, release)
    # "2" names another film than release id 2: the ids disagree, titles decide
    assert report["method"] == "title" and report["ids_in_both_catalogues"] == 1
    assert matched["source_item_id"].tolist() == [2, 1]
