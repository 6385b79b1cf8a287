from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from maskrec.pipelines import baselines, evaluation, fine_tuning, pretraining, transfer
from maskrec.pipelines.data_efficiency import nodes
from maskrec.pipelines.data_split.nodes import keep_user_fraction
from maskrec.registry import BY_NAME

# Namespace of each fraction of the target's training users; 100% is the transfer run.
FRACTIONS = {"users_05pct": 0.05, "users_10pct": 0.10, "users_25pct": 0.25, "users_50pct": 0.50}  # fmt: skip
MODELS = ("transfer", "fine_tuned", "sasrec")  # with and without the source, and SASRec
SHARED = {"train_sequences", "item_features", "valid_targets", "test_targets", "source_pretrained_model"}  # fmt: skip
PARAMETERS = {f"params:{g}" for g in ("data_split", "model", "training", "pretraining", "fine_tuning", "sasrec", "evaluation")}  # fmt: skip


def _bound(function, **values):
    return update_wrapper(partial(function, **values), function)


def _one_fraction(fraction: float) -> Pipeline:
    """The target-side training of the curve's models on `fraction` of the training users
    (the project's own pipelines, their `train_sequences` swapped for the subset), and
    their evaluation on all test users."""
    subset = {"train_sequences": "subset_train_sequences"}
    return Pipeline(
        [
            Node(
                _bound(keep_user_fraction, fraction=fraction),
                inputs=["train_sequences", "params:data_split"],
                outputs="subset_train_sequences",
                name="keep_user_fraction_node",
            ),
            Pipeline(pretraining.create_pipeline(), inputs=subset),
            Pipeline(
                fine_tuning.create_pipeline().only_nodes(
                    "train_teacher_node", "fine_tune_pretrained_node"
                ),
                inputs=subset,
            ),  # fmt: skip
            Pipeline(
                transfer.create_pipeline().only_nodes(
                    "continue_on_target_node", "fine_tune_source_pretrained_node"
                ),
                inputs=subset,
            ),  # fmt: skip
            Pipeline(
                baselines.create_pipeline().only_nodes("train_sasrec_node"),
                inputs=subset,
            ),  # fmt: skip
            evaluation.create_pipeline(tuple(BY_NAME[m] for m in MODELS)),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Every fraction in its own namespace (`users_10pct.fine_tuned_model`, ...), then the
    curve and its figure; the transfer run provides 100% and the model pretrained on the
    source alone, which each fraction continues on its own users."""
    fractions = [
        Pipeline(_one_fraction(f), namespace=ns, inputs=SHARED, parameters=PARAMETERS)
        for ns, f in FRACTIONS.items()
    ]
    curve = {"full": "evaluation_metrics", **{ns: f"{ns}.evaluation_metrics" for ns in FRACTIONS}}  # fmt: skip
    return Pipeline(
        [
            *fractions,
            Node(
                _bound(
                    nodes.summarise_data_efficiency,
                    fractions={"full": 1.0, **FRACTIONS},
                    models=MODELS,
                ),  # fmt: skip
                inputs=curve,
                outputs="data_efficiency",
                name="summarise_data_efficiency_node",
            ),
            Node(
                nodes.plot_data_efficiency,
                inputs="data_efficiency",
                outputs="data_efficiency_plot",
                name="plot_data_efficiency_node",
            ),
        ]
    )
