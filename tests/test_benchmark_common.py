"""benchmarks/common.py: a tuning benchmark's test runs under the environment its study
wrote train at the winners, not at the study's starting --params; its JSON reports what
the study's trials cost, also when a later invocation resumed it."""

from __future__ import annotations

import sys

import yaml

from tests.conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

from common import ScratchProject, study_seconds, under_environment  # noqa: E402


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


def test_a_resumed_study_reports_what_its_trials_cost_not_the_resuming_run():
    # the summary a study resumed for its last trials writes: every model's trials, run
    # by earlier invocations too; one trial was cut short by a stop and retried
    summary = {
        "fine_tuned": {"seconds": 2336.8, "seconds_cut_short": 0.0},
        "scratch": {"seconds": 1023.4, "seconds_cut_short": 791.8},
        "sasrec": {
            "seconds": 576.5
        },  # a summary from before cut-short trials were kept apart
    }
    seconds = study_seconds(summary, invocation_seconds=565.6)
    assert seconds["trials"] == 2336.8 + 1023.4 + 576.5
    assert seconds["cut_short"] == 791.8
    assert seconds["this_invocation"] == 565.6
