"""The ``gat.pt`` file format: what ``pretrain`` writes and ``embed``, ``finetune`` and ``predict`` read.

Kept apart from the training loop so that the readers import only this. The payload is
plain data (tensors, dicts, lists, strings), loadable with ``torch.load(weights_only=True)``:
``format``/``format_version``, ``encoder``/``decoder`` state dicts, ``config`` (a
``GATConfig`` as a dict), ``in_dims``, ``node_types``, ``relations``, ``embedding_dim``,
``feature_names``, ``num_nodes`` and ``ids`` (packed per node type), plus what the trainer
adds (``epoch``, ``val``, ``split_fingerprint``, ``graph``, ``world_size``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mdr_graph.errors import UserError

GAT_FILE = "gat.pt"
GAT_FORMAT = "mdr-graph-gat"
GAT_FORMAT_VERSION = 2  # 2: heterogeneous (node types, relations, one decoder per relation); 1: song-video only


def pack_ids(ids: list[str]) -> str | list[str]:
    """Node ids as one newline-joined string: pickling one string is ~100x faster than 3M small ones."""
    return "\n".join(ids) if not any("\n" in i for i in ids) else list(ids)


def unpack_ids(packed: str | list[str], n: int) -> list[str]:
    if isinstance(packed, list):
        return packed
    return packed.split("\n") if n else []


def gat_payload(encoder, decoders, cfg, parts, extra: dict) -> dict:
    """Everything ``embed.load_gat`` needs to rebuild the model (``encoder``: a ``HeteroGAT``,
    ``decoders``: its ``LinkDecoders``, ``cfg``: its ``GATConfig``, ``parts``: the graph's ``GraphParts``)."""
    return {
        "format": GAT_FORMAT, "format_version": GAT_FORMAT_VERSION,
        "encoder": encoder.state_dict(), "decoder": decoders.state_dict(),
        "config": dataclasses.asdict(cfg), "in_dims": dict(encoder.in_dims),
        "node_types": list(encoder.node_types), "relations": [list(r) for r in encoder.relations],
        "embedding_dim": encoder.out_dim, "feature_names": parts.feature_names,
        "num_nodes": parts.num_nodes, "ids": {t: pack_ids(parts.ids[t]) for t in parts.node_types},
        **extra,
    }


def check_payload(p, path: str | Path) -> dict:
    """``p`` (a loaded ``gat.pt``) if it is a GAT file this version reads, else a one-line error."""
    if not isinstance(p, dict) or p.get("format") != GAT_FORMAT:
        raise UserError(f"{path} is not a GAT checkpoint written by `mdr-graph pretrain`")
    if p.get("format_version") != GAT_FORMAT_VERSION:
        raise UserError(f"{path} has GAT format {p.get('format_version')} (the song-video GAT of an earlier "
                        f"version), this version reads {GAT_FORMAT_VERSION}; re-run `mdr-graph pretrain`")
    return p
