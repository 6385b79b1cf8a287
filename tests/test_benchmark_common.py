"""benchmarks/common.py: a tuning benchmark's test runs under the environment its study
wrote train at the winners, not at the study's starting --params."""

from __future__ import annotations

import sys

import yaml

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

from common import ScratchProject, under_environment  # noqa: E402


def test_the_tuned_environment_s_winners_win_over_the_study_s_params(tmp_path):
    study = "model.num_heads=2,pretraining.mask_prob=0.2,sasrec.schedule.learning_rate=0.001,data_split.strategy=random"  # fmt: skip
    project = ScratchProject(tmp_path / "project", None, study)
    (project.folder / "conf/tuned").mkdir()
    winners = {"pretraining": {"mask_prob": 0.43}, "sasrec": {"schedule": {"learning_rate": 0.002, "epochs": 30}}}  # fmt: skip
    (project.folder / "conf/tuned/parameters.yml").write_text(yaml.safe_dump(winners))

    # Kedro puts runtime parameters over every environment: as the study's params stand,
    # the tuned run would train at the study's first point
    naive = ScratchProject(project.folder, "tuned", study, fresh=False).parameters()
    assert naive["pretraining"].mask_prob == 0.2

    tuned = under_environment(project, "tuned")
    assert tuned.params == "model.num_heads=2,data_split.strategy=random"
    parameters = tuned.parameters()
    assert parameters["pretraining"].mask_prob == 0.43
    assert (parameters["sasrec"].schedule.learning_rate, parameters["sasrec"].schedule.epochs) == (0.002, 30)  # fmt: skip
    # what the environment leaves alone still comes from the study's params
    assert parameters["model"].num_heads == 2 and parameters["data_split"].strategy == "random"  # fmt: skip
    # the shipped configuration's runs keep every param of the study
    shipped = under_environment(project, None)
    assert shipped.params == study and shipped.parameters()["pretraining"].mask_prob == 0.2  # fmt: skip
