"""`maskrec` (and `python -m maskrec`): the project's `kedro run`, or `maskrec serve`.

maskrec --pipelines inference          # as `kedro run --pipelines inference`
maskrec serve --port 8000              # the recommendation service (after a run)
"""

import sys
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")  # fmt: skip
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--env", default=None, help="Kedro environment to read the catalog with (as kedro run --env)")  # fmt: skip
@click.option("--model", default="best", show_default=True,
              help="a model name from maskrec/registry.py, or 'best' (by validation NDCG@10)")  # fmt: skip
@click.option("--project", default=".", show_default=True, type=click.Path(exists=True, file_okay=False),
              help="the project folder whose trained models to serve")  # fmt: skip
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads for scoring; the server's own thread needs a core too")  # fmt: skip
def serve(host: str, port: int, env: str | None, model: str, project: str, threads: int) -> None:  # fmt: skip
    """Serve recommendations from a trained model: POST /recommend, GET /items, GET /health,
    and a page at /. Run `kedro run` (or `make run`) first."""
    import torch
    import uvicorn

    from maskrec.service import create_app, load_recommender

    # One scoring thread by default: concurrent requests are batched (a batch of 32
    # histories costs ~4x one), and torch's threads spinning against the event loop on
    # a small machine cost 50x (docs/benchmarks.md, "Serving").
    torch.set_num_threads(threads)

    recommender = load_recommender(Path(project).resolve(), env, model)
    click.echo(f"serving {recommender.name} on http://{host}:{port}/", err=True)
    uvicorn.run(create_app(recommender), host=host, port=port, log_level="warning")


def main(*args, **kwargs) -> Any:
    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    if sys.argv[1:2] == ["serve"]:
        return serve(sys.argv[2:], prog_name="maskrec serve", **kwargs)
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
