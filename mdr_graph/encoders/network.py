"""The ``network`` modality: the frozen GAT embedding of a video's node, then a trainable FC.

The embedding arrives precomputed (``mdr-graph embed`` writes it per ``video_id``), so
this encoder is only the trainable head: standardise, ``Linear``, GELU, ``Linear``,
``LayerNorm``. Fine-tuning the GAT itself (``--finetune-gat``) is the training loop's job.
"""

from __future__ import annotations

from mdr_graph.encoders.layers import VectorEncoder
from mdr_graph.errors import UserError


class NetworkEncoder(VectorEncoder):
    """``float [B, d_g]`` GAT embedding to one token ``[B, 1, d_model]``."""

    def __init__(self, input_shape: tuple[int, ...], d_model: int, dropout: float = 0.0):
        if len(input_shape) != 1:
            raise UserError(f"network expects a GAT embedding [d_g] per sample, got {tuple(input_shape)}")
        super().__init__(input_shape[0], d_model, hidden=d_model, dropout=dropout, standardize=True)
