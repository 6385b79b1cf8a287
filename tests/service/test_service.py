"""The recommendation service (`maskrec serve`): the catalogue's lookups, batching across
concurrent requests, every route on a trained project, a corpus of malformed requests,
the command line, and the page driven in a real headless browser."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from kedro.io import DatasetError

from maskrec.catalogue import ItemCatalogue
from maskrec.models import SequenceRecModel
from maskrec.scoring import recommend
from maskrec.service import Catalogue, Recommender, create_app, load_recommender
from maskrec.service.app import MAX_BODY_BYTES
from maskrec.service.recommender import Batcher, UnknownItems
from tests.helpers import saved
from tests.models.test_sequence import N_ITEMS, tiny_config

TITLES = ["Star Wars (1977)", "Star Trek (1979)", "Heat (1995)", "Heat (1986)", "Fargo (1996)"]  # fmt: skip


def small_catalogue(titles=TITLES, popularity=None) -> Catalogue:
    n = len(titles)
    counts = np.arange(n, 0, -1) if popularity is None else popularity
    return Catalogue.from_model(ItemCatalogue(
        list(range(101, 101 + n)), list(titles), [int(t[-5:-1]) for t in titles], list(counts),
    ))  # fmt: skip


def test_histories_are_resolved_by_id_or_title_and_every_bad_entry_is_named():
    catalogue = small_catalogue()
    assert catalogue.resolve([101, "star trek", "FARGO (1996)", "Heat (1986)"]) == [1, 2, 5, 4]  # fmt: skip
    with pytest.raises(UnknownItems) as caught:
        catalogue.resolve([101, 999, "heat", "Casablanca"])
    problems = dict(caught.value.problems)
    assert set(problems) == {1, 2, 3}
    assert "movie id 999" in problems[1]
    assert (
        "2 films" in problems[2] and "Heat (1995)" in problems[2]
    )  # ambiguous without a year
    assert "Casablanca" in problems[3]


def test_a_catalogue_with_text_ids_resolves_them_before_titles_and_describes_them_as_text():
    catalogue = Catalogue.from_model(ItemCatalogue(["sku-1", "sku-2", "Kettle"], ["Drill", "Kettle", "Lamp"], [None] * 3, [3, 2, 1]))  # fmt: skip
    # a text entry is an id where the catalogue has that id, a title otherwise
    assert catalogue.resolve(["sku-2", "drill", "Kettle"]) == [2, 1, 3]
    assert catalogue.describe([1])[0]["item_id"] == "sku-1"
    with pytest.raises(UnknownItems):
        catalogue.resolve(["sku-9"])


def test_title_search_matches_every_word_most_popular_first():
    catalogue = small_catalogue(popularity=np.array([1.0, 5.0, 0, 0, 0]))
    assert [f["title"] for f in catalogue.search("star", 10)] == ["Star Trek (1979)", "Star Wars (1977)"]  # fmt: skip
    assert [f["title"] for f in catalogue.search("wars STAR", 10)] == [
        "Star Wars (1977)"
    ]
    assert catalogue.search("star", 1)[0]["item_id"] == 102
    assert catalogue.search("  ", 10) == [] and catalogue.search("zzz", 10) == []


class CountingRecommender(Recommender):
    calls: list[int]

    def top(self, histories, k):
        self.calls.append(len(histories))
        return super().top(histories, k)


def tiny_recommender() -> CountingRecommender:
    torch.manual_seed(0)
    titles = [f"Film {i} ({1950 + i})" for i in range(N_ITEMS)]
    recommender = CountingRecommender(SequenceRecModel(tiny_config()).eval(), "tiny", small_catalogue(titles), 512)  # fmt: skip
    recommender.calls = []
    return recommender


def test_concurrent_requests_are_scored_together_with_the_same_results():
    recommender = tiny_recommender()
    histories = [[(i * 7 + j) % N_ITEMS + 1 for j in range(1 + i % 5)] for i in range(24)]  # fmt: skip
    ks = [1 + i % 10 for i in range(24)]

    async def all_at_once():
        batcher = Batcher(recommender, max_batch=16)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(h, k) for h, k in zip(histories, ks, strict=True)))  # fmt: skip
        finally:
            await batcher.stop()

    answers = asyncio.run(all_at_once())
    assert recommender.calls == [16, 8]  # two batches, not 24 calls
    for history, k, (items, scores) in zip(histories, ks, answers, strict=True):
        alone_items, alone_scores = recommend(recommender.model, [history], k, 512)
        assert items.tolist() == alone_items[0].tolist()
        np.testing.assert_allclose(scores, alone_scores[0], rtol=1e-5, atol=1e-6)
        assert not set(items.tolist()) & set(history)


# --- the service on a trained project -------------------------------------------------


@pytest.fixture(scope="module")
def served(full_run):
    recommender = load_recommender(full_run)
    with TestClient(create_app(recommender)) as client:
        yield client, recommender


@pytest.mark.slow
def test_a_history_gets_k_unseen_films_with_titles_from_the_best_model(
    served, full_run
):
    client, recommender = served
    stats = json.loads(
        (saved(full_run / "data/08_reporting/model_stats.json")).read_text()
    )
    scored = {m: s for m, s in stats.items() if "skipped" not in s}
    assert recommender.name == max(scored, key=lambda m: scored[m]["valid_ndcg@10"])
    films = recommender.catalogue.items
    history = [int(films["original_item_id"].iloc[i]) for i in (0, 5, 9)]
    answer = client.post("/recommend", json={"history": [history[0], films["title"].iloc[5], history[2]], "k": 7})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == recommender.name
    assert [
        f["item_id"] for f in body["history"]
    ] == history  # the title resolved to its id
    assert len(body["items"]) == 7 and all(f["title"] for f in body["items"])
    assert not {f["item_id"] for f in body["items"]} & set(history)
    scores = [f["score"] for f in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # the one scoring path: what inference would recommend for the same history
    ids = recommender.catalogue.resolve(history)
    expected, _ = recommend(recommender.model, [ids], 7, 512)
    originals = films.loc[expected[0], "original_item_id"].tolist()
    assert [f["item_id"] for f in body["items"]] == originals


@pytest.mark.slow
def test_health_and_title_lookup(served):
    client, recommender = served
    health = client.get("/health").json()
    assert health == {"status": "ok", "model": recommender.name, "items": len(recommender.catalogue.items),
                      "trained_on": recommender.trained_on}  # fmt: skip
    # what the model was trained on, from its own folder
    assert health["trained_on"]["n_items"] == health["items"] and len(health["trained_on"]["training_data"]) == 16  # fmt: skip
    word = recommender.catalogue.items["title"].iloc[0].split()[0]
    found = client.get("/items", params={"query": word, "limit": 5}).json()
    assert 1 <= len(found) <= 5 and all(
        word.lower() in f["title"].lower() for f in found
    )
    page = client.get("/")
    assert page.status_code == 200 and 'id="search"' in page.text


def malformed(known: int) -> list[tuple[str, str, dict, str]]:
    """(method, path, request options, text the error must contain)."""
    big = {"history": [known] * 40_000, "k": 5}
    return [
        ("post", "/recommend", {"json": {"history": [], "k": 5}}, "history"),
        ("post", "/recommend", {"json": {"k": 5}}, "history"),
        ("post", "/recommend", {"json": {"history": [known], "k": 0}}, "k"),
        ("post", "/recommend", {"json": {"history": [known], "k": 101}}, "k"),
        ("post", "/recommend", {"json": {"history": [known], "k": "ten"}}, "k"),
        ("post", "/recommend", {"json": {"history": [known], "k": 2.5}}, "k"),
        (
            "post",
            "/recommend",
            {"json": {"history": [known, 10**12], "k": 5}},
            "history",
        ),
        ("post", "/recommend", {"json": {"history": [known, -3], "k": 5}}, "history"),
        (
            "post",
            "/recommend",
            {"json": {"history": [known, "No Such Film (1800)"], "k": 5}},
            "history",
        ),  # fmt: skip
        ("post", "/recommend", {"json": {"history": [1.5], "k": 5}}, "history"),
        ("post", "/recommend", {"json": {"history": [None], "k": 5}}, "history"),
        ("post", "/recommend", {"json": {"history": [[known]], "k": 5}}, "history"),
        ("post", "/recommend", {"json": {"history": [True], "k": 5}}, "history"),
        ("post", "/recommend", {"json": {"history": known, "k": 5}}, "history"),
        (
            "post",
            "/recommend",
            {"json": {"history": [known], "k": 5, "user": 1}},
            "user",
        ),
        ("post", "/recommend", {"json": [known]}, "body"),
        (
            "post",
            "/recommend",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            "JSON",
        ),  # fmt: skip
        (
            "post",
            "/recommend",
            {
                "content": json.dumps(big).encode(),
                "headers": {"content-type": "application/json"},
            },
            "bytes",
        ),  # fmt: skip
        (
            "post",
            "/recommend",
            {"content": b"history=1", "headers": {"content-type": "text/plain"}},
            "body",
        ),  # fmt: skip
        # JSON that Python's parser accepts and RFC 8259 does not
        *[
            (
                "post",
                "/recommend",
                {"content": body, "headers": {"content-type": "application/json"}},
                named,
            )
            for body, named in [
                (b'{"history": [1], "k": NaN}', "NaN is not a JSON value"),
                (b'{"history": [Infinity], "k": 5}', "Infinity is not a JSON value"),
                (b'{"history": [1], "k": -Infinity}', "Infinity is not a JSON value"),
                (b'{"history": [1e400], "k": 5}', "overflows a 64-bit float"),
                (b'{"history": [1], "k": 5, "k": 6}', "duplicate key 'k'"),
                (
                    b'{"history": [1], "k": 5, "history": [2]}',
                    "duplicate key 'history'",
                ),
                (
                    b'{"history": ["Fargo \xff (1996)"], "k": 5}',
                    "invalid UTF-8 at byte 20",
                ),
                (b'{"history": [1], "k": ' + b"9" * 5000 + b"}", "digits"),
            ]
        ],  # fmt: skip
        ("get", "/recommend", {}, "Method Not Allowed"),
        ("get", "/items", {}, "query"),
        ("get", "/items", {"params": {"query": ""}}, "query"),
        ("get", "/items", {"params": {"query": "a", "limit": 0}}, "limit"),
        ("get", "/items", {"params": {"query": "a", "limit": "many"}}, "limit"),
        ("get", "/nowhere", {}, "Not Found"),
    ]


@pytest.mark.slow
def test_malformed_requests_get_a_4xx_naming_the_field_and_the_service_stays_up(served):
    client, recommender = served
    known = int(recommender.catalogue.items["original_item_id"].iloc[0])
    assert len(json.dumps({"history": [known] * 40_000})) > MAX_BODY_BYTES
    for method, path, options, named in malformed(known):
        response = getattr(client, method)(path, **options)
        assert 400 <= response.status_code < 500, (path, options, response.status_code, response.text)  # fmt: skip
        assert named in response.text, (path, options, response.text)
    n = len(recommender.catalogue.items)
    everything = recommender.catalogue.items["original_item_id"].astype(int).tolist()
    assert client.post("/recommend", json={"history": everything[: n - 3], "k": 4}).status_code == 422  # fmt: skip
    assert client.get("/health").status_code == 200
    assert (
        client.post("/recommend", json={"history": [known], "k": 3}).status_code == 200
    )


def test_serving_an_untrained_project_says_what_to_run(tmp_path):
    from tests.conftest import copy_project

    with pytest.raises(FileNotFoundError, match=r"run `kedro run` \(or `make run`\)"):
        load_recommender(copy_project(tmp_path))


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path):
    from click.testing import CliRunner

    from maskrec.cli import serve
    from tests.conftest import copy_project

    result = CliRunner().invoke(serve, ["--project", str(copy_project(tmp_path))])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "run `kedro run` (or `make run`)" in result.output


# --- the command line and the page in a browser ----------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """A service command in its own process, as a user starts it; its URL once /health
    answers."""
    port = free_port()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    process = subprocess.Popen(
        [*command, "--port", str(port)], cwd=cwd,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"{command} exited: {process.stdout.read()[-3000:]}")
            time.sleep(0.5)
    process.kill()
    pytest.fail(f"{command} did not answer /health within 120 s")


@pytest.fixture(scope="module")
def server(full_run):
    """`maskrec serve` in its own process, pointed at the project."""
    process, url = start([sys.executable, "-m", "maskrec", "serve", "--project", str(full_run)], Path.cwd())  # fmt: skip
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_maskrec_serve_answers_over_http(server):
    with urllib.request.urlopen(f"{server}/health", timeout=5) as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["items"] > 0


@pytest.mark.slow
def test_kedro_serve_is_a_project_command(full_run):
    """`kedro serve`, run inside the project (Kedro adds `maskrec.cli`'s commands to
    `kedro`), serves the same model as `maskrec serve`, and takes --env."""
    kedro = str(Path(sys.executable).with_name("kedro"))
    help_text = subprocess.run([kedro, "serve", "--help"], cwd=full_run, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert all(
        option in help_text
        for option in ("--env", "--model", "--version", "--model-uri")
    )
    process, url = start(
        [kedro, "serve", "--env", "local", "--model", "sasrec"], full_run
    )
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            assert json.loads(response.read())["model"] == "sasrec"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_maskrec_serve_serves_a_registered_mlflow_model(full_run):
    """`--model-uri models:/<name>/<version>`: the model a tracked run registered."""
    process, url = start([sys.executable, "-m", "maskrec", "serve", "--project", str(full_run), "--model-uri", "models:/maskrec-test/1"], Path.cwd())  # fmt: skip
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            health = json.loads(response.read())
        stats = json.loads((saved(full_run / "data/08_reporting/model_stats.json")).read_text())  # fmt: skip
        from maskrec.registry import chosen

        assert health["model"] == chosen(stats) and health["trained_on"]["n_items"] == health["items"]  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=30)


def browser():
    """Debian's chromium and its driver, or a skip saying what is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)")  # fmt: skip
    selenium = pytest.importorskip("selenium.webdriver")
    options = selenium.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):  # fmt: skip
        options.add_argument(flag)
    return selenium.Chrome(options=options, service=selenium.ChromeService(executable_path=driver))  # fmt: skip


@pytest.mark.slow
def test_the_page_builds_a_history_from_typed_titles_and_shows_the_top_10(
    server, full_run
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    films = pd.read_parquet(full_run / "data/04_feature/item_features.parquet")
    title, picked = films["title"].iloc[3], int(films["original_item_id"].iloc[3])
    driver = browser()
    try:
        driver.get(server)
        wait = WebDriverWait(driver, 60)
        search = wait.until(ready.presence_of_element_located((By.ID, "search")))
        search.send_keys(title)  # as a person types it, key by key
        pick = wait.until(lambda d: next((b for b in d.find_elements(By.CSS_SELECTOR, "#suggestions button")
                                          if int(b.get_attribute("data-item-id")) == picked), False))  # fmt: skip
        assert title in pick.text
        pick.click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recommendations li")) == 10)  # fmt: skip
        history = [int(li.get_attribute("data-item-id")) for li in driver.find_elements(By.CSS_SELECTOR, "#history li")]  # fmt: skip
        assert history == [picked]
        shown = driver.find_elements(By.CSS_SELECTOR, "#recommendations li")
        ids = [int(li.get_attribute("data-item-id")) for li in shown]
        assert picked not in ids
        assert all(li.find_element(By.CLASS_NAME, "title").text for li in shown)
        # the same list the API gives for that history
        request = urllib.request.Request(f"{server}/recommend", data=json.dumps({"history": [picked], "k": 10}).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert ids == [f["item_id"] for f in json.loads(response.read())["items"]]
    finally:
        driver.quit()


@pytest.mark.slow
def test_films_added_after_training_are_served_from_content(full_run, tmp_path):
    """`maskrec serve --new-films <csv>`: a film added after training can be recommended
    (scored from content by the run's new_films_model) and found by title, but not named
    in a history; a malformed file stops the server before it starts."""
    sasrec = load_recommender(full_run, model="sasrec")
    films = sasrec.catalogue.items
    newest = int(films["original_item_id"].max()) + 1
    csv = tmp_path / "new.csv"
    csv.write_text(
        f"movieId,title,genres\n{newest},Zyzzyva Returns (2031),Drama|Comedy\n"
    )
    recommender = load_recommender(full_run, model="sasrec", new_films=str(csv))
    assert len(recommender.catalogue.items) == len(films) + 1
    everything = len(films) + 1 - 3
    with TestClient(create_app(recommender)) as client:
        history = [int(i) for i in films["original_item_id"].iloc[:3]]
        ranked, _ = recommender.top(
            [recommender.catalogue.resolve(history)], everything
        )
        listed = [f["item_id"] for f in recommender.catalogue.describe(ranked[0])]
        assert newest in listed
        assert (
            client.post("/recommend", json={"history": history, "k": 7}).status_code
            == 200
        )
        # the films the model trained on keep its order
        alone, _ = recommend(sasrec.model, [sasrec.catalogue.resolve(history)], 20, 512)
        plain = [f["item_id"] for f in sasrec.catalogue.describe(alone[0])]
        mixed = [i for i in listed if i != newest]
        untrained = set(films.loc[films["popularity"] == 0, "original_item_id"])
        assert [i for i in mixed if i not in untrained][:10] == [
            i for i in plain if i not in untrained
        ][:10]
        assert (
            client.get("/items", params={"query": "zyzzyva"}).json()[0]["item_id"]
            == newest
        )
        refused = client.post("/recommend", json={"history": [newest], "k": 5})
        assert refused.status_code == 422 and "added after training" in refused.text
    csv.write_text(f"movieId,title,genres\n{newest},Zyzzyva Returns,Drama\n")
    with pytest.raises(DatasetError, match=r"new\.csv, line 2, column 'title'"):
        load_recommender(full_run, model="sasrec", new_films=str(csv))


@pytest.mark.slow
def test_an_mlflow_model_serves_films_added_after_training_as_the_project_does(full_run, tmp_path, monkeypatch):  # fmt: skip
    """A sequence model logged to MLflow carries the run's new-film mixture and softmax
    temperature: `--model-uri ... --new-films <csv>` ranks as the project's own model
    does; a model logged without the mixture says so."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from maskrec.datasets.mlflow_model import log_model
    from maskrec.service import load_recommender_from_uri

    bootstrap_project(full_run)
    with KedroSession.create(project_path=full_run) as session:
        catalog = session.load_context().catalog
        folder, mixture = (Path(catalog.get(name).path) for name in ("sasrec_model", "new_films_model"))  # fmt: skip
        temperature = catalog.load("model_stats")["sasrec"]["temperature"]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # MLflow's tracking and registry URIs are process-wide (module globals and environment
    # variables): leave them as they were, unset included, for the tests that follow
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    monkeypatch.setattr(registry, "_registry_uri", registry._registry_uri)
    monkeypatch.setattr(tracking, "_tracking_uri", tracking._tracking_uri)
    for variable in ("MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_URI"):
        present = variable in os.environ
        monkeypatch.setenv(
            variable, os.environ.get(variable, "")
        )  # records the state to restore
        if not present:
            monkeypatch.delenv(variable)
    mlflow.set_tracking_uri(store)
    # the project's session left its own experiment active
    mlflow.set_experiment("new-films")
    with mlflow.start_run():
        with_mixture = log_model(folder, "sasrec", None, mixture, temperature).model_uri
        without = log_model(folder, "sasrec").model_uri
    project = load_recommender(full_run, model="sasrec")
    newest = int(project.catalogue.items["original_item_id"].max()) + 1
    csv = tmp_path / "new.csv"
    csv.write_text(f"movieId,title,genres\n{newest},Zyzzyva Returns (2031),Drama|Comedy\n")  # fmt: skip

    own = load_recommender(full_run, model="sasrec", new_films=str(csv))
    logged = load_recommender_from_uri(with_mixture, full_run, tracking_uri=store, new_films=str(csv))  # fmt: skip
    history = [int(i) for i in project.catalogue.items["original_item_id"].iloc[:3]]
    everything = len(own.catalogue.items) - 3
    ranked = [r.top([r.catalogue.resolve(history)], everything) for r in (own, logged)]
    assert (ranked[0][0] == ranked[1][0]).all()  # the same films, in the same order
    np.testing.assert_allclose(ranked[0][1], ranked[1][1], rtol=1e-6)
    assert newest in [f["item_id"] for f in logged.catalogue.describe(ranked[1][0][0])]  # fmt: skip
    with pytest.raises(ValueError, match="logged without a new-film mixture"):
        load_recommender_from_uri(without, full_run, tracking_uri=store, new_films=str(csv))  # fmt: skip
