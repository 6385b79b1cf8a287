"""`maskrec` (and `python -m maskrec`): the project's `kedro run`, or `maskrec serve`
(the same command as `kedro serve`, `cli.py`).

maskrec --pipelines inference          # as `kedro run --pipelines inference`
maskrec serve --port 8000              # the recommendation service (after a run)
"""

import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project

from maskrec.cli import serve


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
