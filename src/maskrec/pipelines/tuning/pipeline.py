from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from maskrec.params import TUNED_MODELS
from maskrec.pipelines.tuning import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """A study per compared model (each node skips itself when its model is not in
    `tuning.models`), then the winners as the `tuned` environment and a summary. Inputs
    are the item features, the training sequences and the validation targets: the test
    split is not read."""
    data = ["item_features", "train_sequences", "valid_targets"]
    params = ["params:tuning", "params:pretraining", "params:fine_tuning", "params:sasrec", "params:training"]  # fmt: skip
    studies = [
        Node(
            update_wrapper(partial(nodes.tune, model=model), nodes.tune),
            inputs=["tuning_studies", *data, *params],
            outputs=f"tuning_trials_{model}",
            name=f"tune_{model}_node",
        )
        for model in TUNED_MODELS
    ]
    return Pipeline(
        [
            *studies,
            Node(
                nodes.tuned_parameters,
                inputs=[
                    "tuning_studies",
                    "params:tuning",
                    *(f"tuning_trials_{m}" for m in TUNED_MODELS),
                ],  # fmt: skip
                outputs=["tuned_parameters", "tuning_summary"],
                name="tuned_parameters_node",
            ),
        ]
    )
