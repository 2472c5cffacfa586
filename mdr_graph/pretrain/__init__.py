"""Link-prediction pretraining of the song-video GAT, and its frozen embeddings.

- ``model``: ``GATConfig``, ``SongVideoGAT`` (``model(x_dict, edge_index_dict) -> {'video', 'song'}``), ``LinkDecoder``
- ``linksplit``: the leak-free ``RandomLinkSplit`` of the links and negative sampling
- ``components``: exact mini-batches of whole connected components (no neighbour sampler)
- ``trainer``: ``train(data, cfg, rundir)``: early stopping, checkpoints, ``--resume``, metrics
- ``embed``: ``load_gat``, ``embed_graph``, ``embed_new``, ``embedding_dim`` (what the fusion model calls)
- ``metrics``: AUC / AP / MRR in NumPy; ``synthetic``: graphs with a planted structure
"""
