"""`SequenceTableDataset`: a Parquet table whose cells may hold lists (item-id histories),
with a kedro-viz preview that can be sent as JSON.

pandas reads Parquet list cells as numpy arrays, which the plain `ParquetDataset` preview
passes on as they are; kedro-viz then fails to serialise the preview (HTTP 500 on the
node, and `kedro viz build --include-previews` aborts). Here list cells become lists of
plain ints, shortened to the last `items_shown` items with the full length noted.
"""

from __future__ import annotations

import numpy as np
from kedro_datasets._typing import TablePreview
from kedro_datasets.pandas import ParquetDataset


def _cell(value, items_shown: int):
    if isinstance(value, np.ndarray | list | tuple):
        values = [int(v) for v in value]
        if len(values) <= items_shown:
            return values
        return [f"... ({len(values)} items)", *values[-items_shown:]]
    if isinstance(value, np.generic):
        return value.item()
    return value


class SequenceTableDataset(ParquetDataset):
    def preview(self, nrows: int = 5, items_shown: int = 10) -> TablePreview:
        frame = self.load().head(nrows)
        table = frame.to_dict(orient="split")
        table["data"] = [[_cell(v, items_shown) for v in row] for row in table["data"]]
        table["index"] = [int(i) for i in table["index"]]
        return TablePreview(table)
