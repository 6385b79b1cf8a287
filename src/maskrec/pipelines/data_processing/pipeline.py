from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.data_processing import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.clean_interactions,
                inputs=["movielens_raw", "params:data_processing"],
                outputs=["cleaned_interactions", "cleaning_counts"],
                name="clean_interactions_node",
            ),
            Node(
                nodes.filter_k_core,
                inputs=["cleaned_interactions", "params:data_processing"],
                outputs=["k_core_interactions", "k_core_counts"],
                name="filter_k_core_node",
            ),
            Node(
                nodes.remap_ids,
                inputs="k_core_interactions",
                outputs=["interactions", "user_map", "item_map"],
                name="remap_ids_node",
            ),
            Node(
                nodes.build_item_features,
                inputs=["movielens_raw", "item_map"],
                outputs="item_features",
                name="build_item_features_node",
            ),
            Node(
                nodes.build_data_quality_report,
                inputs=[
                    "movielens_raw",
                    "cleaning_counts",
                    "k_core_counts",
                    "interactions",
                ],
                outputs="data_quality_report",
                name="build_data_quality_report_node",
            ),
        ]
    )
