from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.evaluation import nodes

MODELS = {
    "fine_tuned": "fine_tuned_model",
    "scratch": "scratch_model",
    "pretrained": "pretrained_model",
    "sasrec": "sasrec_model",
    "most_popular": "most_popular_baseline",
    "item_knn": "item_knn_baseline",
    "ease": "ease_baseline",
    "mf_als": "mf_als_baseline",
}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.evaluate_models,
                inputs={
                    "test_targets": "test_targets",
                    "valid_targets": "valid_targets",
                    "train_sequences": "train_sequences",
                    "params": "params:evaluation",
                    **MODELS,
                },
                outputs=["per_user_metrics", "model_stats"],
                name="evaluate_models_node",
            ),
            Node(
                nodes.summarise_evaluation,
                inputs=["per_user_metrics", "model_stats", "params:evaluation"],
                outputs="evaluation_metrics",
                name="summarise_evaluation_node",
            ),
        ]
    )
