"""Frozen embeddings: the three network-embedding modes, the forecaster's view, inductive new videos."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from mdr_graph.cli import main as cli_main
from mdr_graph.errors import UserError
from mdr_graph.graph_build.graph import build_hetero, load_graph, save_graph, songs_table
from mdr_graph.graph_build.schema import VIDEO_EDGE
from mdr_graph.pretrain import embed
from mdr_graph.pretrain.config import GATConfig
from mdr_graph.pretrain.model import reverse
from mdr_graph.pretrain.parts import graph_parts
from mdr_graph.pretrain.trainer import train

from hetero_graph import videos_table, write_graph

N = 400


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A heterogeneous graph (song, creator, hashtag) and a song-only one, each with a short GAT run."""
    root = tmp_path_factory.mktemp("embed")
    videos = videos_table(N, 25)
    write_graph(root / "graph", videos)
    save_graph(build_hetero(videos, songs_table(videos)), root / "song_graph")
    train(load_graph(root / "graph"), GATConfig(hidden=16, heads=2, epochs=3, patience=5), root / "run")
    train(load_graph(root / "song_graph"), GATConfig(hidden=16, heads=2, epochs=2, patience=5), root / "song_run")
    return root, videos


def _emb(df):
    return np.stack(df["embedding"].to_list())


def test_load_gat_gives_a_frozen_model_and_metadata(run):
    root, videos = run
    model, meta = embed.load_gat(root / "run" / "gat.pt")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert meta["embedding_dim"] == 16 == embed.embedding_dim(root / "run" / "gat.pt")
    assert embed.embedding_dim(root / "run", "neighbours") == 48  # song, creator, hashtag blocks
    assert embed.embedding_dim(root / "song_run", "neighbours") == 16
    assert meta["ids"]["video"] == videos["video_id"].tolist()
    assert [r[1] for r in meta["relations"]] == ["uses", "posted_by", "tagged"]


def test_an_old_song_video_gat_file_is_refused_in_one_line(run, tmp_path):
    root, _ = run
    old = torch.load(root / "song_run" / "gat.pt", weights_only=True)
    old["format_version"] = 1
    torch.save(old, tmp_path / "gat.pt")
    with pytest.raises(UserError, match="format 1") as e:
        embed.load_gat(tmp_path / "gat.pt")
    assert "\n" not in str(e.value) and "re-run `mdr-graph pretrain`" in str(e.value)


def test_the_modes_carry_what_they_promise(run):
    root, videos = run
    model, _ = embed.load_gat(root / "run")
    parts = graph_parts(load_graph(root / "graph"))
    with torch.no_grad():
        z = model(parts.x, parts.edges)
    song = embed.embed_graph(root / "run", root / "graph", mode="song")
    assert song["video_id"].tolist() == videos["video_id"].tolist()
    assert song["song_id"].tolist() == videos["song_id"].tolist()
    s_idx = pd.Index(parts.ids["song"]).get_indexer(videos["song_id"])
    np.testing.assert_allclose(_emb(song), z["song"][s_idx].numpy(), atol=1e-5)  # VAN: the song's embedding
    own = embed.embed_graph(root / "run", root / "graph", mode="video")
    np.testing.assert_allclose(_emb(own), z["video"].numpy(), atol=1e-5)
    nb = embed.embed_graph(root / "run", root / "graph", mode="neighbours")
    e = _emb(nb)
    assert e.shape == (N, 48) and np.isfinite(e).all()
    # video 0: its song's embedding, its creator's, and the mean of its hashtags'
    np.testing.assert_allclose(e[0, :16], z["song"][s_idx[0]].numpy(), atol=1e-5)
    c = pd.Index(parts.ids["creator"]).get_loc(videos.loc[0, "author_id"])
    np.testing.assert_allclose(e[0, 16:32], z["creator"][c].numpy(), atol=1e-5)
    tags = parts.edges[("video", "tagged", "hashtag")]
    mine = tags[1, tags[0] == 0]
    want = z["hashtag"][mine].mean(0).numpy() if mine.numel() else np.zeros(16)
    np.testing.assert_allclose(e[0, 32:], want, atol=1e-5)


def test_neighbours_never_see_the_videos_own_features(run):
    """Changing a video's own features leaves its neighbours embedding unchanged (it is not a meta copy)."""
    root, _ = run
    model, _ = embed.load_gat(root / "run")
    parts = graph_parts(load_graph(root / "graph"))
    known = torch.ones(N, dtype=torch.bool)
    known[0] = False  # video 0 is held out: it reads its entities, it does not shape them
    with torch.no_grad():
        a, _ = embed.view_embeddings(model, embed.graph_view(parts, known), "neighbours")
        parts.x["video"][0] += 5.0
        b, _ = embed.view_embeddings(model, embed.graph_view(parts, known), "neighbours")
        c, _ = embed.view_embeddings(model, embed.graph_view(parts, known), "video")
    torch.testing.assert_close(a, b)
    parts.x["video"][0] -= 5.0
    with torch.no_grad():
        d, _ = embed.view_embeddings(model, embed.graph_view(parts, known), "video")
    assert not torch.allclose(c[0], d[0])  # while its own node output moves with them


def test_held_out_videos_change_nothing_but_themselves(run):
    """Only known (training) videos' links shape entities and their degree inputs."""
    root, videos = run
    known = videos["video_id"].iloc[: N // 2].tolist()
    model, _ = embed.load_gat(root / "run")
    parts = graph_parts(load_graph(root / "graph"))
    mask = embed.known_mask(parts, known)
    view = embed.graph_view(parts, mask)
    for r, ei in view.writes.items():
        assert bool(mask[ei[0]].all()) and ei.size(1) == int(mask[parts.edges[r][0]].sum())
    deg = model.degrees(model.complete_edges(view.edge_dict()), {**parts.num_nodes})
    assert deg["song"].sum() == int(mask[parts.edges[VIDEO_EDGE][0]].sum())  # held-out links are not counted
    base = embed.embed_graph(root / "run", root / "graph", mode="neighbours", known_videos=known)
    # scramble every held-out video's features: no known video's embedding moves
    held = ~mask
    g = load_graph(root / "graph")
    g["video"].x[held] = torch.randn(int(held.sum()), g["video"].x.size(1))
    torch.save(g, root / "graph2.pt")
    parts2 = graph_parts(g)
    with torch.no_grad():
        for mode in embed.MODES:
            z1, _ = embed.view_embeddings(model, embed.graph_view(parts, mask), mode)
            z2, _ = embed.view_embeddings(model, embed.graph_view(parts2, mask), mode)
            torch.testing.assert_close(z1[mask], z2[mask])
            if mode != "video":  # graph information only: held-out rows are unmoved too
                torch.testing.assert_close(z1, z2)
    # the transductive default (every video known) differs: held-out links now shape the entities
    every = embed.embed_graph(root / "run", root / "graph", mode="neighbours")
    assert not np.allclose(_emb(every), _emb(base))


@pytest.mark.parametrize("song,creator,tag", list(itertools.product(["known", "new"], repeat=3)))
def test_inductive_embedding_for_every_combination_of_known_and_new_entities(run, song, creator, tag):
    root, videos = run
    row = videos_table(1, 25, seed=7, prefix="fresh").iloc[[0]].copy()
    row["song_id"] = "s1" if song == "known" else "brand-new-song"
    row["author_id"] = "c1" if creator == "known" else "brand-new-creator"
    row["hashtags"] = [["#T1"]] if tag == "known" else [["never-seen-tag"]]
    model, meta = embed.load_gat(root / "run")
    parts = graph_parts(load_graph(root / "graph"))
    for mode in embed.MODES:
        out = embed.embed_new(root / "run", root / "graph", row, mode=mode)
        assert out["video_id"].tolist() == ["fresh0"] and out["in_graph"].tolist() == [False]
        assert out["new_song"].tolist() == [song == "new"]
        e = _emb(out)[0]
        assert np.isfinite(e).all()
        # the same as rebuilding the view by hand: the new row reads its entities, nothing else moves
        view, _ = embed.new_view(model, parts, torch.ones(N, dtype=torch.bool), embed._check_new_videos(row))
        with torch.no_grad():
            z = model(view.x, view.edge_dict())
            ref, _ = embed.view_embeddings(model, view, mode)
        np.testing.assert_allclose(e, ref[N].numpy(), atol=1e-5)
        with torch.no_grad():
            z0 = model(parts.x, parts.edges)
        for t in ("song", "creator", "hashtag"):
            torch.testing.assert_close(z[t][: parts.num_nodes[t]], z0[t])
    # a known entity is looked up with its graph node (features and all); a new one is a new node
    nb = _emb(embed.embed_new(root / "run", root / "graph", row, mode="neighbours"))[0]
    with torch.no_grad():
        z0 = model(parts.x, parts.edges)
    if song == "known":
        np.testing.assert_allclose(nb[:16], z0["song"][parts.ids["song"].index("s1")].numpy(), atol=1e-5)
    if creator == "known":
        np.testing.assert_allclose(nb[16:32], z0["creator"][parts.ids["creator"].index("c1")].numpy(), atol=1e-5)
    if tag == "known":  # "#T1" is normalised to the graph's "t1"
        np.testing.assert_allclose(nb[32:], z0["hashtag"][parts.ids["hashtag"].index("t1")].numpy(), atol=1e-5)


def test_embed_new_keeps_graph_rows_and_drops_rows_without_an_embedding(run):
    root, videos = run
    new = videos_table(3, 25, seed=9, prefix="new")
    new.loc[0, "song_id"] = None                      # no song: no `song` embedding
    new.loc[1, ["song_id", "author_id"]] = None
    new.at[1, "hashtags"] = []                        # nothing at all: no `neighbours` embedding either
    graph_row = videos.iloc[[5]].copy()
    both = pd.concat([new, graph_row], ignore_index=True)
    song = embed.embed_new(root / "run", root / "graph", both, mode="song")
    assert song["video_id"].tolist() == ["new2", "v5"]
    nb = embed.embed_new(root / "run", root / "graph", both, mode="neighbours")
    assert nb["video_id"].tolist() == ["new0", "new2", "v5"]
    full = embed.embed_graph(root / "run", root / "graph", mode="neighbours")
    np.testing.assert_allclose(_emb(nb)[2], full.loc[5, "embedding"], atol=1e-5)  # a graph row: its graph embedding
    own = embed.embed_new(root / "run", root / "graph", both, mode="video")
    assert len(own) == 4  # every row has its own node


def test_song_mode_needs_songs_and_modes_are_checked(run, tmp_path):
    root, videos = run
    g = load_graph(root / "graph")  # the same graph without song nodes (any subset of node types may be present)
    for key in (VIDEO_EDGE, reverse(VIDEO_EDGE), "song"):
        del g[key]
    train(g, GATConfig(hidden=8, heads=2, epochs=1), tmp_path / "r")
    model, _ = embed.load_gat(tmp_path / "r")
    parts = graph_parts(g)
    view = embed.graph_view(parts, torch.ones(N, dtype=torch.bool))
    with pytest.raises(UserError, match="song nodes"):
        embed.view_embeddings(model, view, "song")
    with torch.no_grad():
        z, present = embed.view_embeddings(model, view, "neighbours")
    assert z.shape == (N, 16) and bool(present.all())
    with pytest.raises(UserError, match="unknown network embedding"):
        embed.embed_graph(root / "run", root / "graph", mode="own")
    with pytest.raises(UserError, match="trained on"):
        embed.embed_graph(root / "run", root / "song_graph")


def test_embed_new_rejects_bad_input(run):
    root, _ = run
    with pytest.raises(UserError, match="video_id"):
        embed.embed_new(root / "run", root / "graph", pd.DataFrame({"song_id": ["s1"]}))
    with pytest.raises(UserError, match="more than once"):
        embed.embed_new(root / "run", root / "graph", pd.DataFrame({"video_id": ["a", "a"], "song_id": ["s1", "s1"]}))
    with pytest.raises(UserError, match="no GAT checkpoint"):
        embed.load_gat(root / "nowhere.pt")


def test_cli_streams_graph_and_new_videos_to_parquet(run, tmp_path, capsys):
    root, videos = run
    new = videos_table(4, 30, seed=3, prefix="tomorrow")
    new.to_parquet(tmp_path / "new.parquet")
    (tmp_path / "splits.json").write_text('{"train": ' + str(videos["video_id"].iloc[:300].tolist()).replace("'", '"')
                                          + ', "val": [], "test": []}')
    out = tmp_path / "emb.parquet"
    rc = cli_main(["embed", "--gat", str(root / "run" / "gat.pt"), "--graph", str(root / "graph"), "--out", str(out),
                   "--new-videos", str(tmp_path / "new.parquet"), "--songs-out", str(tmp_path / "songs.parquet"),
                   "--batch-videos", "100", "--network-embedding", "song",
                   "--known-videos", str(tmp_path / "splits.json")])
    assert rc == 0
    df = pd.read_parquet(out)
    assert len(df) == 404 and df["video_id"].is_unique
    assert df["in_graph"].sum() == 400
    assert _emb(df).shape == (404, 16)
    songs = pd.read_parquet(tmp_path / "songs.parquet")
    assert len(songs) == 25 and songs["degree"].sum() == 300  # only the known videos' links count
    rc = cli_main(["embed", "--gat", str(root / "run"), "--graph", str(root / "graph"), "--out", str(out),
                   "--new-videos", str(tmp_path / "missing.parquet")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_pretrain_cli_end_to_end_and_resume_flags(run, tmp_path, capsys):
    root, _ = run
    args = ["pretrain", "--graph", str(root / "graph"), "--out", str(tmp_path / "r"), "--epochs", "2",
            "--hidden", "8", "--heads", "2", "--seed", "1", "--batch-edges", "300"]
    assert cli_main(args) == 0
    assert "posted_by" in capsys.readouterr().out
    assert (tmp_path / "r" / "metrics.json").exists()
    assert cli_main(args) == 2 and "--resume" in capsys.readouterr().err
    assert cli_main(args + ["--resume", "--hidden", "16"]) == 2 and "hidden" in capsys.readouterr().err
    assert cli_main(args[:5] + ["--epochs", "3", "--resume"]) == 0
    assert cli_main(["pretrain", "--graph", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert "no graph" in capsys.readouterr().err


def test_views_replace_their_videos_rows_with_the_views_embeddings(run):
    """``embed_graph(views=...)``: each view's videos read entities that only that view's known videos write."""
    root, videos = run
    ids = videos["video_id"].tolist()
    known, a, b = ids[: N // 2], ids[: N // 4], ids[N // 4: N // 2]
    base = embed.embed_graph(root / "run", root / "graph", known_videos=known).set_index("video_id")
    got = embed.embed_graph(root / "run", root / "graph", known_videos=known,
                            views=[(b, a), (a, b)]).set_index("video_id")    # two folds, each seeing the other
    only_b = embed.embed_graph(root / "run", root / "graph", known_videos=b).set_index("video_id")
    only_a = embed.embed_graph(root / "run", root / "graph", known_videos=a).set_index("video_id")
    assert list(got.index) == list(base.index)
    in_a, in_b = base.index.isin(a), base.index.isin(b)
    np.testing.assert_array_equal(_emb(got[in_a]), _emb(only_b[in_a]))
    np.testing.assert_array_equal(_emb(got[in_b]), _emb(only_a[in_b]))
    np.testing.assert_array_equal(_emb(got[~in_a & ~in_b]), _emb(base[~in_a & ~in_b]))
    assert not np.allclose(_emb(got[in_a]), _emb(base[in_a]))   # a's own links no longer shape what a reads


@pytest.mark.parametrize("split", ["random", "time", "song"])
def test_training_videos_network_embeddings_are_out_of_fold(run, split):
    """A training video never reads an entity that it (or its fold, or a later video) wrote into, as no
    held-out video does; held-out videos read entities written by every training video."""
    from mdr_graph.splits import SplitConfig, make_splits
    from mdr_graph.train.config import TrainConfig
    from mdr_graph.train.oof import oof_pairs
    from mdr_graph.train.prepare import network_embeddings

    root, videos = run
    cfg = TrainConfig(graph=str(root / "graph"), gat=str(root / "run"), modalities=["network"], split=split,
                      seed=0, oof_folds=3)
    splits = make_splits(videos, SplitConfig(split, 0))
    index = pd.Series(np.arange(len(videos)), index=videos["video_id"])
    train_rows = index.loc[splits["train"]].to_numpy()
    got = network_embeddings(cfg, videos, known_videos=splits["train"], train_rows=train_rows).set_index("video_id")
    ids = videos["video_id"].to_numpy()
    held = embed.embed_graph(root / "run", root / "graph", known_videos=splits["train"]).set_index("video_id")
    outside = ~got.index.isin(splits["train"])
    np.testing.assert_array_equal(_emb(got[outside]), _emb(held[outside]))
    pairs = list(oof_pairs(videos, train_rows, split, 0, 3))
    assert sorted(np.concatenate([inside for _, inside in pairs]).tolist()) == sorted(train_rows.tolist())
    t = videos["create_time"].to_numpy()
    for fit, inside in pairs:
        assert not set(fit) & set(inside)
        if split == "time":
            assert len(fit) == 0 or t[fit].max() < t[inside].min()   # only strictly older videos write
        view = embed.embed_graph(root / "run", root / "graph", known_videos=ids[fit]).set_index("video_id")
        these = got.index.isin(ids[inside])
        np.testing.assert_array_equal(_emb(got[these]), _emb(view[these]))


@pytest.mark.parametrize("split", ["random", "time"])
@pytest.mark.parametrize("mode", ["video", "neighbours"])
def test_finetuning_runs_the_gat_on_the_frozen_embeddings_views(run, split, mode):
    """``--finetune-gat`` changes the GAT's weights, not what a video may see: before any step, every
    video's fine-tuned input equals its frozen out-of-fold (training) or held-out embedding."""
    from mdr_graph.splits import SplitConfig, make_splits
    from mdr_graph.train.config import TrainConfig
    from mdr_graph.train.finetune import GraphViews, wrap
    from mdr_graph.train.prepare import network_embeddings

    root, videos = run
    cfg = TrainConfig(graph=str(root / "graph"), gat=str(root / "run"), modalities=["network"], split=split,
                      seed=0, oof_folds=3, network_embedding=mode)
    splits = make_splits(videos, SplitConfig(split, 0))
    train_rows = pd.Series(np.arange(len(videos)), index=videos["video_id"]).loc[splits["train"]].to_numpy()
    frozen = network_embeddings(cfg, videos, known_videos=splits["train"], train_rows=train_rows)

    fusion = torch.nn.Linear(1, 1)
    fusion.modalities = ["network"]
    model = wrap(fusion, cfg.gat, cfg.graph, mode=mode, views=GraphViews.of_run(videos, train_rows, split, 0, 3))
    views = model.views
    assert views.known[0].sum() == len(train_rows) and not views.view_of[~views.known[0]].any()
    mine = views.known[views.view_of, torch.arange(len(videos))]   # does a video write in the view it reads?
    assert not mine.any(), "a video reads a view that its own links shape"
    node = pd.Index(model.parts.ids["video"]).get_indexer(frozen["video_id"].astype(str))
    with torch.no_grad():
        tuned = model.video_embeddings(torch.from_numpy(node)).numpy()
    np.testing.assert_allclose(tuned, _emb(frozen), atol=1e-5)

    state = views.state()   # the checkpoint's copy
    saved = wrap(fusion, cfg.gat, cfg.graph, mode=mode, views=GraphViews.from_state(state)).views
    assert torch.equal(saved.known, views.known) and torch.equal(saved.view_of, views.view_of)
    with pytest.raises(UserError, match="same order"):   # views index videos by node: another graph is refused
        wrap(fusion, cfg.gat, cfg.graph, mode=mode, views=GraphViews.from_state({**state, "videos": "another"}))


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("sizes", [[40, 41, 39, 43, 40], [1, 30, 2], [2]])
def test_finetuning_batches_read_one_view_each_and_cover_every_video(world_size, sizes):
    """One GAT pass per step: every global batch reads one view; under DDP every rank takes a share of
    every batch (a view smaller than the ranks repeats its videos), so no rank waits on another."""
    from mdr_graph.train.finetune import view_batches

    view_of = np.random.default_rng(0).permutation(np.repeat(np.arange(1, len(sizes) + 1), sizes))
    ranks = [view_batches(view_of, 16, seed=3, epoch=1, rank=r, world_size=world_size) for r in range(world_size)]
    assert len({len(b) for b in ranks}) == 1, "every rank must take the same number of steps"
    got = [i for batches in ranks for batch in batches for i in batch]
    assert set(got) == set(range(len(view_of)))
    if min(sizes) >= world_size:
        assert len(got) == len(view_of)   # nothing repeated
    for step in zip(*ranks):
        assert all(step), "a rank got an empty batch"
        together = np.concatenate(step)
        assert len(np.unique(view_of[together])) == 1 and len(together) < 16 + world_size
    assert view_batches(view_of, 16, 3, 1) == view_batches(view_of, 16, 3, 1)
