"""A leak-free split of every relation's links, and negative pairs to score against them.

One PyG ``RandomLinkSplit`` over every forward relation present (``(video, uses, song)``,
``(video, posted_by, creator)``, ``(video, tagged, hashtag)``, each with its reverse edge
type split alongside) splits each relation's links on its own and assigns every link one
role, kept per relation as a ``role`` vector over that relation's edges:

- ``MP``: training message passing only,
- ``SUP``: training supervision only (``disjoint_train_ratio`` of the training links),
- ``VAL`` / ``TEST``: held out.

Each stage scores its links on a message-passing graph that excludes them: training on
``MP``; validation on ``MP + SUP``; test on ``MP + SUP + VAL``. At inference (``embed``)
every link passes messages and nothing is scored, so no label is involved.

The split is a pure function of the seed (``RandomLinkSplit`` runs inside a forked,
seeded RNG), so a resumed run recomputes exactly the split it started with.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mdr_graph.errors import UserError

MP, SUP, VAL, TEST = 0, 1, 2, 3
STAGES = {"train": MP, "val": SUP, "test": VAL}   # stage -> highest role that passes messages
SCORED = {"train": SUP, "val": VAL, "test": TEST}  # stage -> role it scores


@dataclass
class LinkSplit:
    """Roles of one relation's ``(video, entity)`` edges plus fixed validation/test negatives."""

    edge_index: Tensor     # [2, E] (video, entity), every link of the relation
    role: Tensor           # [E] int8, one of MP/SUP/VAL/TEST
    num_videos: int
    num_dst: int           # entities of the relation's type
    val_neg: Tensor        # [2, n] (video, entity) pairs that are not links
    test_neg: Tensor

    def message_edges(self, stage: str) -> Tensor:
        """The message-passing graph a stage scores on: never contains the links it scores."""
        return self.edge_index[:, self.role <= STAGES[stage]]

    def positives(self, stage: str) -> Tensor:
        return self.edge_index[:, self.role == SCORED[stage]]

    def pairs(self, stage: str) -> tuple[Tensor, Tensor]:
        """``(pairs [2, n], labels [n])`` for ``val`` or ``test``: positives then fixed negatives."""
        pos = self.positives(stage)
        neg = {"val": self.val_neg, "test": self.test_neg}[stage]
        labels = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))])
        return torch.cat([pos, neg], dim=1), labels

    def counts(self) -> dict[str, int]:
        c = torch.bincount(self.role.long(), minlength=4).tolist()
        return {"mp": c[MP], "sup": c[SUP], "val": c[VAL], "test": c[TEST],
                "val_neg": int(self.val_neg.size(1)), "test_neg": int(self.test_neg.size(1))}

    def hash_into(self, h) -> None:
        for t in (self.edge_index, self.role, self.val_neg, self.test_neg):
            h.update(t.contiguous().numpy().tobytes())


def fingerprint(splits: dict[str, LinkSplit]) -> str:
    """A short hash of every relation's split, stored in checkpoints so a resume can prove it has the same one."""
    h = hashlib.sha256()
    for name in sorted(splits):
        h.update(name.encode())
        splits[name].hash_into(h)
    return h.hexdigest()[:16]


class EdgeSet:
    """Membership test for (video, entity) pairs, via sorted int64 keys (no Python sets at 3M edges)."""

    def __init__(self, edge_index: Tensor, num_dst: int):
        self.num_dst = max(num_dst, 1)
        self.keys = np.unique(edge_index[0].numpy().astype(np.int64) * self.num_dst + edge_index[1].numpy())

    def contains(self, videos: Tensor, dst: Tensor) -> Tensor:
        q = videos.numpy().astype(np.int64) * self.num_dst + dst.numpy()
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, max(len(self.keys) - 1, 0))
        hit = self.keys[pos] == q if len(self.keys) else np.zeros(q.shape, bool)
        return torch.from_numpy(hit)


def sample_negatives(n: int, video_pool: Tensor, dst_pool: Tensor, links: EdgeSet,
                     generator: torch.Generator, max_rounds: int = 20) -> Tensor:
    """``[2, <=n]`` (video, entity) pairs drawn uniformly from the pools that are not links of the relation.

    Pairs that hit a real link are redrawn; if the pools are so small that ``n`` non-links
    cannot be found in ``max_rounds`` rounds, fewer are returned.
    """
    if n <= 0 or video_pool.numel() == 0 or dst_pool.numel() == 0:
        return torch.empty(2, 0, dtype=torch.long)
    found: list[Tensor] = []
    need = n
    for _ in range(max_rounds):
        v = video_pool[torch.randint(video_pool.numel(), (need,), generator=generator)]
        s = dst_pool[torch.randint(dst_pool.numel(), (need,), generator=generator)]
        keep = ~links.contains(v, s)
        found.append(torch.stack([v[keep], s[keep]]))
        need -= int(keep.sum())
        if need == 0:
            break
    return torch.cat(found, dim=1)


def negative_pools(kind: str, positives: Tensor, videos: Tensor, songs: Tensor) -> tuple[Tensor, Tensor]:
    """Where negatives for ``positives [2, n]`` draw their videos and entities from (pools may repeat ids).

    Written for songs; every relation works alike with its own entities (creators, hashtags)
    in place of songs.

    - ``corrupt-song``: the positives' videos, any song. Positive and negative videos then look
      alike, so the model must tell which song a video uses, not whether it already has one.
    - ``uniform``: any video, any song (RandomLinkSplit's negatives). Each video uses one song, so
      a random video nearly always has its song in the message-passing graph while a positive's
      video never does: an easy shortcut that inflates AUC.
    - ``shuffle``: the positives' videos and songs, re-paired (songs weighted by how often they
      occur). Both sides' marginals match the positives', so neither popularity nor "this song lost
      its only video to the held-out set" separates them: only the pairing does.
    """
    if kind == "corrupt-song":
        return positives[0].unique(), songs
    if kind == "uniform":
        return videos, songs
    if kind == "shuffle":
        return positives[0], positives[1]
    raise ValueError(f"unknown negatives {kind!r}")


def split_links(edges: dict[tuple[str, str, str], Tensor], num_nodes: dict[str, int], *, val_ratio: float,
                test_ratio: float, disjoint_train_ratio: float, neg_ratio: float, negatives: str, seed: int
                ) -> dict[str, LinkSplit]:
    """Split each relation's links with one ``RandomLinkSplit`` and draw fixed validation/test negatives.

    ``edges`` maps forward relations (``video -> entity``) to ``[2, E]`` edge indices.
    Returns ``{relation name ('uses', 'posted_by', 'tagged'): LinkSplit}``.
    """
    from torch_geometric.data import HeteroData
    from torch_geometric.transforms import RandomLinkSplit

    from mdr_graph.pretrain.model import reverse

    if not edges:
        raise UserError("the graph has no video links to pretrain on (no song, creator or hashtag edges)")
    data = HeteroData()
    for t, n in num_nodes.items():
        data[t].num_nodes = n
    for et, ei in edges.items():
        E = ei.size(1)
        if int(val_ratio * E) < 1 or int(test_ratio * E) < 1 or int(E * (1 - val_ratio - test_ratio)
                                                                      * disjoint_train_ratio) < 1:
            raise UserError(f"the graph has {E} {et[1]!r} links ({et[0]} -> {et[2]}), too few for a "
                            f"{val_ratio:g}/{test_ratio:g} validation/test split with {disjoint_train_ratio:g} of "
                            "training links for supervision; link prediction needs at least a few dozen links "
                            "per relation (build the graph without that node type)")
        if num_nodes[et[2]] < 2:
            raise UserError(f"the graph has {num_nodes[et[2]]} {et[2]} node(s); link prediction needs at least two "
                            "to have negatives")
        store = data[et]
        store.edge_index = ei
        # Edge ids ride through the transform: ``eid`` as an edge attribute (kept on message-passing
        # edges) and as the label key (copied onto supervision edges; no negatives, so not shifted).
        store.eid = torch.arange(E)
        store.edge_label = torch.arange(E)
        data[reverse(et)].edge_index = ei.flip(0)
    relations = list(edges)
    transform = RandomLinkSplit(num_val=val_ratio, num_test=test_ratio, disjoint_train_ratio=disjoint_train_ratio,
                                neg_sampling_ratio=0.0, add_negative_train_samples=False,
                                edge_types=relations, rev_edge_types=[reverse(et) for et in relations])
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        train, val, test = transform(data)
    out = {}
    for k, et in enumerate(relations):
        ei = edges[et]
        E, n_dst = ei.size(1), num_nodes[et[2]]
        role = torch.full((E,), -1, dtype=torch.int8)
        role[train[et].eid] = MP
        role[train[et].edge_label] = SUP
        role[val[et].edge_label] = VAL
        role[test[et].edge_label] = TEST
        assert (role >= 0).all(), "RandomLinkSplit left an edge without a role"
        links = EdgeSet(ei, n_dst)
        negs = []
        for offset, r in ((1, VAL), (2, TEST)):
            pos = ei[:, role == r]
            video_pool, dst_pool = negative_pools(negatives, pos, torch.arange(num_nodes["video"]),
                                                  torch.arange(n_dst))
            # The first relation keeps the seeds a song-only graph always had, so its split is unchanged.
            g = torch.Generator().manual_seed(seed * 1000 + offset + 10 * k)
            negs.append(sample_negatives(max(1, round(neg_ratio * pos.size(1))), video_pool, dst_pool, links, g))
            if negs[-1].size(1) == 0:
                raise UserError(f"found no negative pairs for the {'validation' if r == VAL else 'test'} "
                                f"{et[1]!r} links with negatives={negatives!r}: every candidate pair is a link. "
                                "Try --negatives uniform")
        out[et[1]] = LinkSplit(ei, role, num_nodes["video"], n_dst, negs[0], negs[1])
    return out
