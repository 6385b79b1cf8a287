from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.baselines import nodes


def create_pipeline(**kwargs) -> Pipeline:
    searched = [
        "train_sequences",
        "valid_targets",
        "item_features",
        "params:baselines",
        "params:training",
    ]
    return Pipeline(
        [
            Node(
                nodes.fit_most_popular,
                ["train_sequences", "item_features"],
                "most_popular_baseline",
                name="fit_most_popular_node",
            ),
            Node(
                nodes.fit_newest_first,
                ["train_sequences", "item_features"],
                "newest_first_baseline",
                name="fit_newest_first_node",
            ),
            Node(
                nodes.fit_genre_recency,
                ["train_sequences", "item_features"],
                "genre_recency_baseline",
                name="fit_genre_recency_node",
            ),
            Node(
                nodes.fit_new_items,
                ["train_sequences", "item_features", "params:baselines"],
                "new_films_model",
                name="fit_new_items_node",
            ),
            Node(
                nodes.fit_random,
                ["train_sequences", "item_features", "params:baselines"],
                "random_baseline",
                name="fit_random_node",
            ),
            Node(
                nodes.fit_item_knn,
                searched,
                ["item_knn_baseline", "item_knn_selection"],
                name="fit_item_knn_node",
            ),
            Node(
                nodes.fit_ease,
                searched,
                ["ease_baseline", "ease_selection"],
                name="fit_ease_node",
            ),
            Node(
                nodes.fit_matrix_factorization,
                searched,
                ["mf_als_baseline", "mf_als_selection"],
                name="fit_matrix_factorization_node",
            ),
            Node(
                nodes.train_target_sasrec,
                [
                    "item_features",
                    "train_sequences",
                    "valid_targets",
                    "params:sasrec",
                    "params:training",
                ],
                ["sasrec_model", "sasrec_history"],
                name="train_sasrec_node",
            ),
            Node(
                nodes.collect_baseline_selection,
                ["item_knn_selection", "ease_selection", "mf_als_selection"],
                "baseline_selection",
                name="collect_baseline_selection_node",
            ),
        ]
    )
