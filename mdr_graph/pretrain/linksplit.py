"""A leak-free split of the (video, uses, song) links, and negative pairs to score against them.

PyG's ``RandomLinkSplit`` (with the reverse edge type split alongside) assigns every link
one role, kept here as a single ``role`` vector over the graph's edges:

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
from mdr_graph.graph_build.schema import REV_EDGE, VIDEO_EDGE

MP, SUP, VAL, TEST = 0, 1, 2, 3
STAGES = {"train": MP, "val": SUP, "test": VAL}   # stage -> highest role that passes messages
SCORED = {"train": SUP, "val": VAL, "test": TEST}  # stage -> role it scores


@dataclass
class LinkSplit:
    """Roles of the graph's ``(video, song)`` edges plus fixed validation/test negatives."""

    edge_index: Tensor     # [2, E] (video, song), the whole graph
    role: Tensor           # [E] int8, one of MP/SUP/VAL/TEST
    num_videos: int
    num_songs: int
    val_neg: Tensor        # [2, n] (video, song) pairs that are not links
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

    def fingerprint(self) -> str:
        """A short hash of the split, stored in checkpoints so a resume can prove it has the same one."""
        h = hashlib.sha256()
        for t in (self.edge_index, self.role, self.val_neg, self.test_neg):
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


class EdgeSet:
    """Membership test for (video, song) pairs, via sorted int64 keys (no Python sets at 3M edges)."""

    def __init__(self, edge_index: Tensor, num_songs: int):
        self.num_songs = num_songs
        self.keys = np.unique(edge_index[0].numpy().astype(np.int64) * num_songs + edge_index[1].numpy())

    def contains(self, videos: Tensor, songs: Tensor) -> Tensor:
        q = videos.numpy().astype(np.int64) * self.num_songs + songs.numpy()
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, max(len(self.keys) - 1, 0))
        hit = self.keys[pos] == q if len(self.keys) else np.zeros(q.shape, bool)
        return torch.from_numpy(hit)


def sample_negatives(n: int, video_pool: Tensor, song_pool: Tensor, links: EdgeSet,
                     generator: torch.Generator, max_rounds: int = 20) -> Tensor:
    """``[2, <=n]`` (video, song) pairs drawn uniformly from the pools that are not links of the graph.

    Pairs that hit a real link are redrawn; if the pools are so small that ``n`` non-links
    cannot be found in ``max_rounds`` rounds, fewer are returned.
    """
    if n <= 0 or video_pool.numel() == 0 or song_pool.numel() == 0:
        return torch.empty(2, 0, dtype=torch.long)
    found: list[Tensor] = []
    need = n
    for _ in range(max_rounds):
        v = video_pool[torch.randint(video_pool.numel(), (need,), generator=generator)]
        s = song_pool[torch.randint(song_pool.numel(), (need,), generator=generator)]
        keep = ~links.contains(v, s)
        found.append(torch.stack([v[keep], s[keep]]))
        need -= int(keep.sum())
        if need == 0:
            break
    return torch.cat(found, dim=1)


def negative_pools(kind: str, positives: Tensor, videos: Tensor, songs: Tensor) -> tuple[Tensor, Tensor]:
    """Where negatives for ``positives [2, n]`` draw their videos and songs from (pools may repeat ids).

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


def split_links(edge_index: Tensor, num_videos: int, num_songs: int, *, val_ratio: float, test_ratio: float,
                disjoint_train_ratio: float, neg_ratio: float, negatives: str, seed: int) -> LinkSplit:
    """Split the links with ``RandomLinkSplit`` and draw fixed validation/test negatives."""
    from torch_geometric.data import HeteroData
    from torch_geometric.transforms import RandomLinkSplit

    E = edge_index.size(1)
    if int(val_ratio * E) < 1 or int(test_ratio * E) < 1 or int(E * (1 - val_ratio - test_ratio)
                                                                  * disjoint_train_ratio) < 1:
        raise UserError(f"the graph has {E} links, too few for a {val_ratio:g}/{test_ratio:g} validation/test "
                        f"split with {disjoint_train_ratio:g} of training links for supervision; "
                        "link prediction needs at least a few dozen links")
    if num_songs < 2:
        raise UserError(f"the graph has {num_songs} song(s); link prediction needs at least two to have negatives")
    data = HeteroData()
    data["video"].num_nodes = num_videos
    data["song"].num_nodes = num_songs
    store = data[VIDEO_EDGE]
    store.edge_index = edge_index
    # Edge ids ride through the transform: ``eid`` as an edge attribute (kept on message-passing
    # edges) and as the label key (copied onto supervision edges; no negatives, so not shifted).
    store.eid = torch.arange(E)
    store.edge_label = torch.arange(E)
    data[REV_EDGE].edge_index = edge_index.flip(0)
    transform = RandomLinkSplit(num_val=val_ratio, num_test=test_ratio, disjoint_train_ratio=disjoint_train_ratio,
                                neg_sampling_ratio=0.0, add_negative_train_samples=False,
                                edge_types=[VIDEO_EDGE], rev_edge_types=[REV_EDGE])
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        train, val, test = transform(data)
    role = torch.full((E,), -1, dtype=torch.int8)
    role[train[VIDEO_EDGE].eid] = MP
    role[train[VIDEO_EDGE].edge_label] = SUP
    role[val[VIDEO_EDGE].edge_label] = VAL
    role[test[VIDEO_EDGE].edge_label] = TEST
    assert (role >= 0).all(), "RandomLinkSplit left an edge without a role"

    links = EdgeSet(edge_index, num_songs)
    negs = []
    for offset, r in ((1, VAL), (2, TEST)):
        pos = edge_index[:, role == r]
        video_pool, song_pool = negative_pools(negatives, pos, torch.arange(num_videos), torch.arange(num_songs))
        g = torch.Generator().manual_seed(seed * 1000 + offset)
        negs.append(sample_negatives(max(1, round(neg_ratio * pos.size(1))), video_pool, song_pool, links, g))
        if negs[-1].size(1) == 0:
            raise UserError(f"found no negative pairs for the {'validation' if r == VAL else 'test'} links with "
                            f"negatives={negatives!r}: every candidate pair is a link. Try --negatives uniform")
    return LinkSplit(edge_index, role, num_videos, num_songs, negs[0], negs[1])
