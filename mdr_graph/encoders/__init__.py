"""Per-modality encoders: each maps one modality's batch to tokens ``[B, T_m, d_model]``.

Which encoder serves which modality, with which knobs, is declared in the modality
registry, :mod:`mdr_graph.modalities` (``build_encoder``, ``register``); this package
holds only the encoder modules.
"""
