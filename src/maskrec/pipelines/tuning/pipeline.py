from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from maskrec.params import RANKING_TUNED, RATING_TUNED, TRANSFER_TUNED, TUNED_MODELS
from maskrec.pipelines.tuning import nodes


def _for(function, model: str):
    return update_wrapper(partial(function, model=model), function)


def create_pipeline(transfer: bool = False, **kwargs) -> Pipeline:
    """A study per compared model (each node skips itself when its model is not in
    `tuning.models`), then the winners as the `tuned` environment and a summary. Inputs
    are the item features, the training sequences and the validation targets, and for
    the rating models the cleaned ratings, of which the first node keeps the next-rating
    protocol's (or one random fold's) training and validation ratings: no test split is
    read.
    `transfer`: the transfer run's models too (`TRANSFER_TUNED`), from the source's
    sequences in the target's item ids (their validation targets are the source users'
    own last events) and the joint sequences, which the transfer package makes."""
    data = ["item_features", "train_sequences", "valid_targets"]
    params = ["params:tuning", "params:pretraining", "params:fine_tuning", "params:scratch", "params:sasrec", "params:training"]  # fmt: skip
    ranking = [
        Node(_for(nodes.tune, model), inputs=["tuning_studies", *data, *params],
             outputs=f"tuning_trials_{model}", name=f"tune_{model}_node")
        for model in RANKING_TUNED
    ]  # fmt: skip
    source = ["pretraining_source_sequences", "pretraining_source_valid_targets", "joint_train_sequences"]  # fmt: skip
    stages = ["params:transfer_pretraining", "params:transfer_continuation", "params:transfer_fine_tuning", "params:joint_sasrec"]  # fmt: skip
    transferred = [
        Node(_for(nodes.tune_transfer, model),
             inputs=["tuning_studies", *data, *source, "params:tuning", *stages, "params:training"],
             outputs=f"tuning_trials_{model}", name=f"tune_{model}_node")
        for model in (TRANSFER_TUNED if transfer else ())
    ]  # fmt: skip
    rating_data = ["item_features", "rating_tuning_fitted", "rating_tuning_valid"]
    rating = [
        Node(_for(nodes.tune_ratings, model),
             inputs=["tuning_studies", *rating_data, "params:tuning", "params:ratings", "params:training"],
             outputs=f"tuning_trials_{model}", name=f"tune_{model}_node")
        for model in RATING_TUNED
    ]  # fmt: skip
    gathered = [m for m in TUNED_MODELS if transfer or m not in TRANSFER_TUNED]
    return Pipeline(
        [
            Node(
                nodes.rating_tuning_input,
                ["interactions", "params:tuning", "params:ratings"],
                ["rating_tuning_fitted", "rating_tuning_valid"],
                name="rating_tuning_input_node",
            ),
            *ranking,
            *transferred,
            *rating,
            Node(
                nodes.tuned_parameters,
                inputs=[
                    "tuning_studies",
                    "params:tuning",
                    *(f"tuning_trials_{m}" for m in gathered),
                ],  # fmt: skip
                outputs=["tuned_parameters", "tuning_summary"],
                name="tuned_parameters_node",
            ),
            Node(
                nodes.plot_studies,
                inputs=[f"tuning_trials_{m}" for m in gathered],
                outputs="tuning_plot",
                name="plot_studies_node",
            ),
        ]
    )
