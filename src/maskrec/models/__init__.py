"""Models with no Kedro in them: the sequence recommender (a Hugging Face BERT encoder over
item ids, `sequence.py`) with its batch layouts (`packing.py`) and CPU dropout
(`cpu_dropout.py`), and the classic baselines (`baselines.py`)."""

from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel

__all__ = ["SequenceRecConfig", "SequenceRecModel"]
