"""The committed configuration: every environment loads, every group validates, and every
value of a training stage reaches the model config, schedule or loss it must reach (and
nothing else)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import yaml

from maskrec.config import load_parameters
from maskrec.models.losses import ItemLoss
from maskrec.params import (
    GROUPS,
    SHARED,
    STAGES,
    WarmStart,
    leaves,
    setting_at,
    value_at,
)
from maskrec.training.loop import _loss_settings
from maskrec.training.setup import model_config
from tests.conftest import PROJECT_ROOT
from tests.helpers import small_split

CONF = PROJECT_ROOT / "conf"


@pytest.mark.parametrize("env", ["local", "ml100k", "ml1m"])
def test_every_environment_sets_every_group(env):
    assert set(load_parameters(CONF, env)) == set(GROUPS)


def test_ml100k_overrides_single_keys_and_keeps_the_rest_of_base():
    base, ml100k = load_parameters(CONF, "local"), load_parameters(CONF, "ml100k")
    assert ml100k["pretraining"].model.max_len == 200 != base["pretraining"].model.max_len  # fmt: skip
    # soft merge: keys the environment does not name still come from base
    assert ml100k["fine_tuning"].model.hidden_size == base["fine_tuning"].model.hidden_size  # fmt: skip
    assert ml100k["fine_tuning"].schedule.batch_size == base["fine_tuning"].schedule.batch_size  # fmt: skip
    assert ml100k["baselines"] == base["baselines"]
    # the environment's architecture reaches every stage; SASRec keeps its own dropout
    assert ml100k["sasrec"].model.max_len == 200 and ml100k["sasrec"].model.hidden_dropout == 0.2  # fmt: skip
    assert ml100k["transfer_pretraining"].mask_prob == ml100k["pretraining"].mask_prob == 0.2  # fmt: skip
    # a shared block the environment sets (`schedule.min_improvement`) reaches every stage,
    # beside each stage's own keys (pretraining's patience stays its own)
    stages = ("pretraining", "fine_tuning", "scratch", "sasrec", "transfer_pretraining")
    assert {ml100k[s].schedule.min_improvement for s in stages} == {0.01} != {base["sasrec"].schedule.min_improvement}  # fmt: skip
    assert ml100k["pretraining"].schedule.patience == 20 and ml100k["scratch"].schedule.patience == 8  # fmt: skip
    # ... but not the rating run's stages, whose RMSE the margin made worse (they say 0)
    rating_stages = (ml100k["ratings"].pretraining, ml100k["ratings"].head)
    assert {s.schedule.min_improvement for s in rating_stages} == {0.0}


def test_ml1m_is_the_ml1m_subset_study_s_winners_plus_the_start_chosen_after_it():
    """conf/ml1m must stay the environment the committed study wrote (so `--env ml1m`
    runs the settings docs/benchmarks.md reports: the study's, the fine-tuned model from
    the shrunk start), and hold nothing else but that start, chosen on validation after."""
    result = json.loads((PROJECT_ROOT / "benchmarks/results/tuned_ml1m_subset.json").read_text())  # fmt: skip
    study = yaml.safe_load(result["environment"])
    written = yaml.safe_load((CONF / "ml1m" / "parameters.yml").read_text())
    start = ["fine_tuning.warm_start.shrink", "fine_tuning.warm_start.perturb"]
    assert sorted(path for path, _ in _leaves(written)) == sorted([path for path, _ in _leaves(study)] + start)  # fmt: skip
    ml1m, base = load_parameters(CONF, "ml1m"), load_parameters(CONF, "local")
    for key, value in _leaves(study):
        assert setting_at(ml1m, key) == value, key
    assert [setting_at(ml1m, key) for key in start] == [0.4, 0.1] != [setting_at(base, key) for key in start]  # fmt: skip
    # the scratch ablation trains with the same fine-tuning spec; the architecture is base's
    assert ml1m["fine_tuning"].model.hidden_size == base["fine_tuning"].model.hidden_size  # fmt: skip
    assert ml1m["data_split"] == base["data_split"]


def test_scratch_is_fine_tuning_from_the_initial_weights_unless_it_says_otherwise():
    """The scratch control's stage: fine-tuning's settings by default (the ablation), its
    own where it states them (a tuned environment's winner), the one teacher, and the
    initial weights as its start, which it cannot set."""
    base = load_parameters(CONF, "local")
    assert base["scratch"] == base["fine_tuning"].model_copy(update={"warm_start": WarmStart(shrink=0.0, perturb=1.0)})  # fmt: skip
    own = load_parameters(CONF, "local", {"scratch": {"cloze_weight": 0.0, "schedule": {"learning_rate": 0.004}}})  # fmt: skip
    assert (own["scratch"].cloze_weight, own["scratch"].schedule.learning_rate) == (0.0, 0.004)  # fmt: skip
    assert own["fine_tuning"] == base["fine_tuning"]
    shrunk = load_parameters(CONF, "local", {"fine_tuning": {"warm_start": {"shrink": 0.4, "perturb": 0.1}}})  # fmt: skip
    assert shrunk["scratch"] == base["scratch"]  # fine-tuning's start is not scratch's
    with pytest.raises(ValueError, match="scratch.warm_start: scratch holds"):
        load_parameters(CONF, "local", {"scratch": {"warm_start": {"shrink": 0.5}}})
    with pytest.raises(ValueError, match="scratch.distillation: scratch takes fine_tuning's distillation"):  # fmt: skip
        load_parameters(CONF, "local", {"scratch": {"distillation": {"weight": 0.5}}})
    with pytest.raises(ValueError, match="scratch.model must be pretraining.model apart from dropout"):  # fmt: skip
        load_parameters(CONF, "local", {"scratch": {"model": {"num_layers": 3}}})


def test_the_transfer_stages_are_the_target_s_unless_they_say_otherwise():
    base = load_parameters(CONF, "local")
    assert base["transfer_continuation"] == base["pretraining"]
    assert base["transfer_fine_tuning"] == base["fine_tuning"]
    assert base["joint_sasrec"] == base["sasrec"]
    own = load_parameters(CONF, "local", {"transfer_fine_tuning": {"cloze_weight": 0.75}, "joint_sasrec": {"schedule": {"learning_rate": 0.004}}})  # fmt: skip
    assert own["transfer_fine_tuning"].cloze_weight == 0.75 != own["fine_tuning"].cloze_weight  # fmt: skip
    assert own["joint_sasrec"].schedule.learning_rate == 0.004 != own["sasrec"].schedule.learning_rate  # fmt: skip
    # the transfer model is distilled from the target's one teacher
    teacher = load_parameters(CONF, "local", {"fine_tuning": {"distillation": {"teacher": {"model": {"hidden_size": 96}}}}})  # fmt: skip
    assert teacher["transfer_fine_tuning"].distillation == teacher["fine_tuning"].distillation  # fmt: skip
    assert teacher["transfer_fine_tuning"].distillation.teacher.model.hidden_size == 96
    with pytest.raises(ValueError, match="transfer_fine_tuning.distillation: transfer_fine_tuning takes fine_tuning's distillation"):  # fmt: skip
        load_parameters(CONF, "local", {"transfer_fine_tuning": {"distillation": {"weight": 0.5}}})  # fmt: skip


def test_runtime_params_override_like_kedro_run_params():
    seeded = load_parameters(CONF, "local", {"training": {"seed": 7}})
    assert seeded["training"].seed == 7 and seeded["pretraining"].seed == 7
    assert seeded["training"].device == load_parameters(CONF, "local")["training"].device  # fmt: skip
    shorter = load_parameters(CONF, "local", {"schedule": {"epochs": 3}})
    assert shorter["fine_tuning"].schedule.epochs == 3  # states no epochs of its own
    assert shorter["pretraining"].schedule.epochs == 60  # states its own


def test_a_params_key_a_later_group_sets_is_reported_with_the_key_that_wins():
    """`params.shadowed_overrides`, which the run-start hook logs: each stage's chain of
    groups decides (the last group that sets a key wins), a key `--params` sets too is
    what was asked for, and a stage outside the run's groups is left out."""
    from maskrec.config import CONFIG_LOADER_ARGS, ProjectConfigLoader
    from maskrec.params import shadowed_overrides

    def shadowed(runtime, groups=None, env="local"):
        loader = ProjectConfigLoader(str(CONF), env=env, runtime_params=runtime, **CONFIG_LOADER_ARGS)  # fmt: skip
        return shadowed_overrides(loader.merged_parameters(), runtime, groups)

    everything = shadowed({"schedule": {"epochs": 5}})
    assert [m.split(": ")[0] for m in everything] == [
        "--params schedule.epochs=5 does not reach pretraining, transfer_pretraining, transfer_continuation",
        "--params schedule.epochs=5 does not reach ratings.pretraining",  # its own 15, not pretraining's 60
        "--params schedule.epochs=5 does not reach ratings.head",
    ]  # fmt: skip
    assert "ratings.pretraining.schedule.epochs = 15 in the configuration wins" in everything[1]  # fmt: skip
    assert shadowed({"schedule": {"epochs": 5}, "pretraining": {"schedule": {"epochs": 5}}}, {"pretraining", "fine_tuning"}) == []  # fmt: skip
    # a group's own architecture block: ratings.model holds the rating stages' model
    assert shadowed({"model": {"max_len": 100}}, {"ratings"})[0].startswith(
        "--params model.max_len=100 does not reach ratings.pretraining, ratings.head: ratings.model.max_len = 64"
    )  # fmt: skip
    # a stage nested in another's group: scratch over fine_tuning, where an environment gives it its own
    assert (
        shadowed({"fine_tuning": {"cloze_weight": 0.5}}) == []
    )  # conf/base: scratch: {}
    # keys outside the training stages' chains, and stages whose group the run does not read
    assert shadowed({"training": {"seed": 3}, "source": "sample"}) == []
    assert shadowed({"schedule": {"epochs": 5}}, {"fine_tuning", "sasrec"}) == []
    # the teacher counts where distillation is on: it states its own 20 epochs
    teacher = shadowed({"schedule": {"epochs": 5}, "fine_tuning": {"distillation": {"weight": 0.5}}}, {"fine_tuning"})  # fmt: skip
    assert teacher == [
        "--params schedule.epochs=5 does not reach fine_tuning.distillation.teacher: "
        "fine_tuning.distillation.teacher.schedule.epochs = 20 in the configuration wins "
        "there (set fine_tuning.distillation.teacher.schedule.epochs to change it)"
    ]


def test_a_missing_key_is_an_error_not_a_silent_default(tmp_path):
    shutil.copytree(CONF, tmp_path / "conf")
    path = tmp_path / "conf" / "base" / "parameters_pretraining.yml"
    path.write_text(path.read_text().replace("  patience: 8 ", "  # patience "))
    with pytest.raises(ValueError, match="patience"):
        load_parameters(tmp_path / "conf", "local")


def test_distillation_with_a_memory_bounded_loss_is_refused():
    """Distillation reads the student's full logits; a chunked or sampled softmax never
    builds them, so the combination is an error at run start, naming both parameters."""
    overrides = {"fine_tuning": {"objective": "next_item", "loss": {"softmax": "chunked"}, "distillation": {"weight": 0.5}}}  # fmt: skip
    with pytest.raises(ValueError, match=r"distillation.weight > 0 needs fine_tuning.loss.softmax: full"):  # fmt: skip
        load_parameters(CONF, "local", overrides)
    overrides["fine_tuning"]["loss"]["softmax"] = "full"
    assert load_parameters(CONF, "local", overrides)["fine_tuning"].loss.softmax == "full"  # fmt: skip


def test_the_schedule_keys_are_written_once_in_base():
    """The shared blocks hold every schedule, loss and regularizer key once; a stage
    group states only differences (so no stage repeats the whole block)."""
    written: dict[str, int] = {}

    def count(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                written[key] = written.get(key, 0) + 1
                count(value)

    for path in (CONF / "base").glob("parameters_*.yml"):
        count(yaml.safe_load(path.read_text()))
    for key in ("batch_size", "weight_decay", "warmup_ratio", "grad_clip", "softmax", "negatives", "label_smoothing"):  # fmt: skip
        assert written[key] == 1, key


# --- every configured value reaches what it configures --------------------------------


def _stage_at(params: dict, path: str):
    group, *inner = path.split(".")
    value = params[group]
    for key in inner:
        value = getattr(value, key)
    return value


def _built(params: dict, item_features) -> dict[tuple[str, str, str], Any]:
    """What every stage trains with, as the training code builds it: each stage's
    `SequenceRecConfig` (`model_config`), its schedule, its loss (`fit`'s
    `LossSettings`), its regularizers and seed, and its objective's settings; by
    (stage, object, field)."""
    built = {}
    for stage in STAGES:
        spec = _stage_at(params, stage)
        config = model_config(item_features, spec.model).to_dict()
        for field in type(spec.model).model_fields:
            built[(stage, "config", field)] = config[field]
        for field, value in spec.schedule.model_dump().items():
            built[(stage, "schedule", field)] = value
        loss = _loss_settings(spec, _windows(), _FakeModel(), None)
        built[(stage, "loss", "softmax")] = loss.item.kind
        built[(stage, "loss", "negatives")] = spec.loss.negatives
        built[(stage, "loss", "label_smoothing")] = loss.label_smoothing
        built[(stage, "loss", "genre_weight")] = loss.genre_weight
        for field, value in spec.regularizers.model_dump().items():
            built[(stage, "regularizers", field)] = value
        built[(stage, "seed", "seed")] = spec.seed
        for field in set(type(spec).model_fields) - {*SHARED, "seed", "distillation"}:
            built[(stage, "objective", field)] = getattr(spec, field)
    return built


class _FakeModel:
    class config:  # noqa: N801
        n_items = 3

    @staticmethod
    def trained_columns():
        return None


def _windows():
    import torch

    return torch.tensor([[1, 2, 3]])


def _leaves(tree: dict) -> list[tuple[str, Any]]:
    """(dotted path, value) of every leaf of a nested mapping."""
    return [(path, value_at(tree, path)) for path in leaves(tree)]


DOUBLED = {
    "hidden_size",
    "num_heads",
    "intermediate_size",
    "title_buckets",
}  # keep heads | hidden


def _changed(path: str, value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2 if path.rsplit(".", maxsplit=1)[-1] in DOUBLED else value + 2
    if isinstance(value, float):
        return round(value / 2 + 0.01, 6)
    return {"full": "chunked", "causal": "next_item", "linear": "cosine"}[value]


OBJECTS = {"model": "config", "schedule": "schedule", "loss": "loss", "regularizers": "regularizers"}  # fmt: skip


def _setting(layer: str, path: str) -> tuple[str, str] | None:
    """(object, key) that conf `path` sets through `layer` of a stage, or None."""
    if layer == "":  # the shared blocks
        group, *rest = path.split(".")
        return (
            (OBJECTS[group], rest[0]) if group in OBJECTS and len(rest) == 1 else None
        )
    if not path.startswith(layer + "."):
        return None
    rest = path[len(layer) + 1 :].split(".")
    if layer.endswith(".model"):
        return ("config", rest[0])
    if rest[0] in OBJECTS and len(rest) == 2:
        return (OBJECTS[rest[0]], rest[1])
    if len(rest) == 1:
        return ("objective", rest[0])
    return None  # a stage nested in this group (fine_tuning.distillation.teacher...)


def _expected(path: str, base: dict) -> set[tuple[str, str]]:
    """The (stage, object) pairs conf `path` configures, worked out from the conf files
    and the stage table (`params.STAGES`): a stage one of whose groups sets it, and no
    later group of which sets the same key in conf/base."""
    expected = set()
    for stage, chain in STAGES.items():
        seed = "ratings.seed" if stage.startswith("ratings.") else "training.seed"
        if path == seed:
            expected.add((stage, "seed"))
        layers = ("", *chain)
        for i, layer in enumerate(layers):
            setting = _setting(layer, path)
            if setting is None or setting == ("objective", "distillation"):
                continue
            if not any(_layer_sets(base, later, setting) for later in layers[i + 1 :]):
                expected.add((stage, setting[0]))
    return expected


def _layer_sets(base: dict, layer: str, setting: tuple[str, str]) -> bool:
    node: Any = base
    for key in layer.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return False
    what, key = setting
    if layer.endswith(".model"):
        return what == "config" and key in node
    if what == "objective":
        return key in node
    block = next(b for b, o in OBJECTS.items() if o == what)
    return isinstance(node.get(block), dict) and key in node[block]


def test_every_conf_value_reaches_the_config_schedule_or_loss_it_must():
    """Change one value of conf/base at a time (through runtime parameters, as `kedro
    run --params` does) and compare what the training code builds: the (stage, object)
    pairs that change must be exactly those that value configures."""
    item_features = small_split()["item_features"]
    base = {}
    for file in (CONF / "base").glob("parameters_*.yml"):
        base |= yaml.safe_load(file.read_text())
    reference = _built(load_parameters(CONF, "local"), item_features)
    training_groups = {"model", "schedule", "loss", "regularizers", "pretraining", "fine_tuning", "sasrec", "transfer_pretraining", "transfer_continuation", "transfer_fine_tuning", "joint_sasrec"}  # fmt: skip
    checked = 0
    for path, value in _leaves({k: v for k, v in base.items() if k in training_groups | {"training", "ratings"}}):  # fmt: skip
        if isinstance(value, (list, dict)) or value is None or isinstance(value, str) and value not in ("full", "causal", "linear"):  # fmt: skip
            continue
        if path.startswith("training.") and path != "training.seed":
            continue
        if path.startswith("ratings.") and path.split(".")[1] not in (
            "seed",
            "model",
            "pretraining",
            "head",
        ):
            continue
        if path in (
            "fine_tuning.distillation.weight",
            "fine_tuning.distillation.temperature",
            "fine_tuning.warm_start.shrink",
            "fine_tuning.warm_start.perturb",
        ):
            continue  # the teacher's share of the loss, the start's weights (tests/pipelines/fine_tuning checks both)
        override = _nested(path, _changed(path, value))
        if (
            path == "fine_tuning.objective"
        ):  # the causal objective refuses distillation only
            override["fine_tuning"]["distillation"] = {"weight": 0.0}
        try:
            params = load_parameters(CONF, "local", override)
        except (
            ValueError
        ) as error:  # a change that makes another stage's weights not fit, or that
            # needs another value (content dropout without item content)
            assert "apart from dropout" in str(error) or "needs model.item_content" in str(error), (path, error)  # fmt: skip
            continue
        built = _built(params, item_features)
        changed = {(stage, what) for (stage, what, _), v in built.items() if v != reference[(stage, what, _)]}  # fmt: skip
        assert changed == _expected(path, base), path
        checked += 1
    assert checked > 40


def _nested(path: str, value: Any) -> dict:
    out: dict = {}
    node = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return out


def test_item_loss_kind_reaches_fit():
    params = load_parameters(CONF, "local", {"loss": {"softmax": "chunked"}})
    loss = _loss_settings(params["sasrec"], _windows(), _FakeModel(), None)
    assert loss.item == ItemLoss("chunked")
