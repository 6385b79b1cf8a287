"""The project's own Kedro commands: `kedro serve` (Kedro adds the commands of a
project's `cli.py` to `kedro`, beside `kedro run`). `maskrec serve` is the same command.

    kedro serve --port 8000              # the recommendation service, after a run
    kedro serve --env ml100k --model sasrec
    kedro serve --model-uri models:/maskrec/3   # a model a tracked run logged (MLflow)
    kedro serve --version 2026-12-04T03.40.12.345Z   # an earlier run's model
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="maskrec")
def cli() -> None:
    """maskrec's project commands."""


@cli.command(name="event-log")
@click.option("--out", default="data/01_raw/shop", show_default=True, type=click.Path(file_okay=False),
              help="folder to write events.parquet and products.csv into")  # fmt: skip
@click.option("--users", default=1000, show_default=True, type=click.IntRange(2))
@click.option("--items", default=1500, show_default=True, type=click.IntRange(10))
@click.option("--events", default=60000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=42, show_default=True)
def event_log(out: str, users: int, items: int, events: int, seed: int) -> None:
    """Write a shop-like event log (text ids, implicit feedback, Parquet, a product table
    with categories) to try a log of one's own: see the README's worked example."""
    from maskrec.sample import SampleSpec, write_event_log

    try:
        spec = SampleSpec(n_users=users, n_items=items, n_ratings=events, seed=seed)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    for path in write_event_log(spec, Path(out)):
        click.echo(f"wrote {path}")


@cli.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")  # fmt: skip
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--env", "-e", default=None, help="Kedro environment to read the catalog with (as kedro run --env)")  # fmt: skip
@click.option("--model", default="best", show_default=True,
              help="a model name from maskrec/registry.py, or 'best' (by validation NDCG@10)")  # fmt: skip
@click.option("--project", default=None, type=click.Path(exists=True, file_okay=False),
              help="the project folder whose trained models to serve (default: this project)")  # fmt: skip
@click.option("--version", default=None,
              help="a run's timestamp in the versioned catalog (data/06_models/<model>/<version>/): serve that run's model")  # fmt: skip
@click.option("--model-uri", default=None,
              help="serve an MLflow model a tracked run logged instead: runs:/<run id>/model or models:/<name>/<version>")  # fmt: skip
@click.option("--tracking-uri", default=None,
              help="the MLflow store --model-uri is found in (default: the one the project's mlflow.yml names)")  # fmt: skip
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads for scoring; the server's own thread needs a core too")  # fmt: skip
@click.option("--new-films", default=None, type=click.Path(),
              help="a CSV of films added after training (movieId,title,genres), recommended from their content")  # fmt: skip
@click.pass_obj
def serve(metadata, host: str, port: int, env: str | None, model: str, project: str | None, version: str | None, model_uri: str | None, tracking_uri: str | None, threads: int, new_films: str | None) -> None:  # fmt: skip
    """Serve recommendations from a trained model: POST /recommend, GET /items, GET /health,
    and a page at /. Run `kedro run` (or `make run`) first."""
    import torch
    import uvicorn
    from kedro.io import DatasetError
    from mlflow.exceptions import MlflowException

    from maskrec.service import create_app, load_recommender, load_recommender_from_uri

    # One scoring thread by default: concurrent requests are batched (a batch of 32
    # histories costs ~4x one), and torch's threads spinning against the event loop on
    # a small machine cost 50x (measured for issue 13: `git show 949a0af:docs/benchmarks.md`).
    torch.set_num_threads(threads)

    # under `kedro`, Kedro passes the project's metadata; `maskrec serve` runs where it is
    default = getattr(metadata, "project_path", None) or Path.cwd()
    folder = Path(project or default).resolve()
    try:
        if model_uri:
            recommender = load_recommender_from_uri(
                model_uri, folder, env, tracking_uri, new_films
            )
        else:
            recommender = load_recommender(folder, env, model, version, new_films)
    except (
        DatasetError,
        ValueError,
        FileNotFoundError,
        MlflowException,
    ) as error:  # what to run or name instead
        raise click.ClickException(str(error)) from None
    click.echo(f"serving {recommender.name} on http://{host}:{port}/", err=True)
    uvicorn.run(create_app(recommender), host=host, port=port, log_level="warning")
