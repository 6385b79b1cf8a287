import warnings
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.rating_prediction import nodes

# Each protocol and fold is a namespace: (protocol, fold)
FOLDS = {
    "rating_next_in_time": ("next_in_time", 0),
    **{f"rating_fold_{k}": ("random_folds", k) for k in range(nodes.FOLDS)},
}
SHARED = {"rating_splits", "item_features"}


def _bound(function, **values):
    return update_wrapper(partial(function, **values), function)


def one_fold(protocol: str, fold: int, namespace: str) -> Pipeline:
    """One protocol and fold: the classic models' predictions (of the test ratings, and
    for the blend of the validation ratings); the sequence models' input; Cloze
    pretraining on the fitted ratings; the rating head from those weights (`fine_tuned`)
    and from the same initial weights (`scratch`); both asked for the fold's test
    ratings; the blend's weights on the validation ratings, and its test predictions. Its
    predictions, blend and histories are saved per fold."""
    data = ["rated_events", "valid_questions", "params:ratings", "params:training"]
    return Pipeline(
        [
            Node(_bound(nodes.select_fold, protocol=protocol, fold=fold), ["rating_splits"],
                 ["train_ratings", "test_ratings"], name="select_fold_node"),
            Node(_bound(nodes.hold_out_validation, protocol=protocol), ["train_ratings", "params:ratings"],
                 ["fitted_ratings", "valid_ratings"], name="hold_out_validation_node"),
            Node(nodes.predict_with_classic_models,
                 ["train_ratings", "fitted_ratings", "valid_ratings", "test_ratings", "params:ratings"],
                 ["classic_predictions", "classic_valid_predictions"], name="predict_with_classic_models_node"),
            Node(nodes.rating_model_input, ["train_ratings", "fitted_ratings", "valid_ratings", "test_ratings", "params:ratings"],
                 ["rated_events", "pretraining_valid_items", "valid_questions", "test_questions", "rating_scale"],
                 name="rating_model_input_node"),
            Node(nodes.init_rating_model, ["item_features", "params:ratings"], "pretrained_initial_model",
                 name="init_pretraining_model_node"),
            Node(nodes.init_rating_model, ["item_features", "params:ratings"], "scratch_initial_model",
                 name="init_scratch_model_node"),
            Node(_bound(nodes.pretrain_on_fold, name=f"{namespace}_pretrained"),
                 ["pretrained_initial_model", "rated_events", "pretraining_valid_items", "params:ratings", "params:training"],
                 ["pretrained_rater", "pretrained_curve"], name="pretrain_node"),
            Node(nodes.add_rating_head, ["pretrained_rater", "rating_scale", "params:ratings"], "fine_tuned_initial_model",
                 name="add_rating_head_to_pretrained_node"),
            Node(nodes.add_rating_head, ["scratch_initial_model", "rating_scale", "params:ratings"], "scratch_head_initial_model",
                 name="add_rating_head_to_scratch_node"),
            Node(_bound(nodes.fine_tune_on_fold, name=f"{namespace}_fine_tuned"), ["fine_tuned_initial_model", *data],
                 ["fine_tuned_rater", "fine_tuned_curve"], name="fine_tune_pretrained_node"),
            Node(_bound(nodes.fine_tune_on_fold, name=f"{namespace}_scratch"), ["scratch_head_initial_model", *data],
                 ["scratch_rater", "scratch_curve"], name="fine_tune_scratch_node"),
            Node(nodes.predict_with_sequence_models,
                 ["test_ratings", "test_questions", "fine_tuned_rater", "scratch_rater", "params:training"],
                 "sequence_predictions", name="predict_with_sequence_models_node"),
            Node(nodes.fit_rating_blend,
                 ["valid_ratings", "valid_questions", "rating_scale", "classic_valid_predictions", "fine_tuned_rater",
                  "scratch_rater", "params:ratings", "params:training"],
                 "rating_blend", name="fit_rating_blend_node"),
            Node(nodes.predict_with_blend, ["classic_predictions", "sequence_predictions", "rating_blend"],
                 "blend_predictions", name="predict_with_blend_node"),
            Node(_bound(nodes.collect_fold, protocol=protocol, fold=fold),
                 ["classic_predictions", "sequence_predictions", "blend_predictions",
                  "pretrained_curve", "fine_tuned_curve", "scratch_curve"],
                 ["rating_predictions", "rating_history"], name="collect_fold_node"),
        ]
    )  # fmt: skip


def create_pipeline(**kwargs) -> Pipeline:
    """Every fold in its own namespace (`rating_fold_2.rating_predictions`, ...): an
    interrupted run resumes at the fold it was in with `kedro run --pipelines
    rating_prediction --only-missing-outputs` (each fold's predictions and histories are
    saved; the fold's training resumes from its last epoch). Next_in_time's fine-tuned
    head is `rating_model`, the model inference rates with."""
    folds = [
        Pipeline(
            one_fold(protocol, fold, namespace), namespace=namespace, inputs=SHARED,
            parameters={"params:ratings", "params:training"},
            outputs={"fine_tuned_rater": "rating_model"} if protocol == "next_in_time" else None,
        )
        for namespace, (protocol, fold) in FOLDS.items()
    ]  # fmt: skip
    # The two nodes that gather every fold read the folds' saved datasets by their dotted
    # names (`rating_fold_2.rating_predictions`: what a resumed run skips). Kedro warns
    # about dotted names read outside their namespace and offers no other way to gather
    # across namespaces (kedro-org/kedro#5021), so here alone the warning is silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "One or more dataset names contain '.'", UserWarning)  # fmt: skip
        gathering = [
            Node(nodes.evaluate_ratings,
                 {"rating_splits": "rating_splits", "params": "params:ratings", "evaluation": "params:evaluation",
                  **{ns: f"{ns}.rating_predictions" for ns in FOLDS}},
                 "rating_metrics", name="evaluate_ratings_node"),
            Node(nodes.collect_histories, {ns: f"{ns}.rating_history" for ns in FOLDS}, "rating_history",
                 name="collect_rating_histories_node"),
        ]  # fmt: skip
    return Pipeline(
        [
            Node(nodes.split_ratings, ["interactions", "params:ratings"], "rating_splits", name="split_ratings_node"),
            *folds,
            *gathering,
            Node(nodes.plot_rating_errors, "rating_metrics", "rating_errors_plot", name="plot_rating_errors_node"),
        ]
    )  # fmt: skip
