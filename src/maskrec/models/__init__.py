"""Pure torch / transformers modules: the sequence encoder and (later) baselines."""

from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel

__all__ = ["SequenceRecConfig", "SequenceRecModel"]
