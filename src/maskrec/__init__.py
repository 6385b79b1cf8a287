"""maskrec"""

import warnings

__version__ = "0.1"

# A warning the libraries underneath raise on every run and no user of this project can
# act on: OmegaConf's deprecation of the resolver API that Kedro and kedro-mlflow call (three
# a run). Any other warning still shows (tests/test_run.py runs `kedro` and looks). Here,
# not in settings.py: a session opened from Python (a notebook, a benchmark) loads
# configuration before it reads the settings. Not filterable: MLflow's advice to type
# kedro-mlflow's `predict` (MLflow shows it under its own "once" filter).
THIRD_PARTY_NOISE = (r"register_new_resolver\(\) is deprecated",)
for message in THIRD_PARTY_NOISE:
    warnings.filterwarnings("ignore", message=message, category=UserWarning)
