from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.data_efficiency import nodes

# Namespace of each fraction of the target's training users; 100% is the transfer run.
FRACTIONS = {"users_05pct": 0.05, "users_10pct": 0.10, "users_25pct": 0.25, "users_50pct": 0.50}  # fmt: skip
MODELS = ("transfer", "fine_tuned", "sasrec")  # with and without the source, and SASRec
SHARED = {"train_sequences", "item_features", "valid_targets", "test_targets", "source_pretrained_model"}  # fmt: skip


def _bound(function, **values):
    return update_wrapper(partial(function, **values), function)


def _one_fraction(retraining: Pipeline, fraction: float) -> Pipeline:
    """`retraining` (the curve's models, trained and evaluated) on `fraction` of the
    training users: its `train_sequences` swapped for the subset."""
    return Pipeline(
        [
            Node(
                _bound(nodes.keep_user_fraction, fraction=fraction),
                inputs=["train_sequences", "params:data_split"],
                outputs="subset_train_sequences",
                name="keep_user_fraction_node",
            ),
            Pipeline(retraining, inputs={"train_sequences": "subset_train_sequences"}),
        ]
    )


def create_pipeline(retraining: Pipeline | None = None, **kwargs) -> Pipeline:
    """Every fraction in its own namespace (`users_10pct.fine_tuned_model`, ...), then the
    curve and its figure. `retraining` is what each fraction reruns on its users: the
    target-side training of `MODELS` and their evaluation, composed from the other
    pipelines by `pipeline_registry` (a pipeline package imports no other). The transfer
    run provides 100% and the model pretrained on the source alone, which each fraction
    continues on its own users."""
    retraining = Pipeline([]) if retraining is None else retraining
    parameters = {p for p in retraining.inputs() | {"params:data_split"} if p.startswith("params:")}  # fmt: skip
    fractions = []
    for namespace, fraction in FRACTIONS.items():
        one = _one_fraction(retraining, fraction)
        # the metrics leave the namespace as users_10pct_evaluation_metrics: the curve's
        # node reads every fraction's, and Kedro warns about dotted names a node outside
        # their namespace reads
        metrics = {"evaluation_metrics": f"{namespace}_evaluation_metrics"}
        fractions.append(Pipeline(one, namespace=namespace, inputs=SHARED & one.inputs(), outputs=metrics, parameters=parameters))  # fmt: skip
    curve = {"full": "evaluation_metrics", **{ns: f"{ns}_evaluation_metrics" for ns in FRACTIONS}}  # fmt: skip
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
