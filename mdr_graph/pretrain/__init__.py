"""Link-prediction pretraining of the heterogeneous video-song-creator-hashtag GAT, and its frozen embeddings.

- ``model``: ``GATConfig``, ``HeteroGAT`` (``HeteroConv`` of ``GATConv``; ``model(x_dict, edge_index_dict) ->
  {type: [n, d]}``), ``LinkDecoders`` (one per relation)
- ``parts``: the tensors of a graph the GAT needs (node types, relations, features, ids)
- ``linksplit``: the leak-free ``RandomLinkSplit`` of every relation's links and negative sampling
- ``batching``: exact mini-batches on k-hop induced subgraphs (no neighbour sampler)
- ``trainer``: ``train(data, cfg, rundir)``: early stopping, checkpoints, ``--resume``, per-relation metrics
- ``embed``: ``load_gat``, ``embed_graph``, ``embed_new``, ``embedding_dim``: the network modality's
  ``neighbours`` / ``song`` / ``video`` embeddings on the forecaster's view of the graph (see docs/pretraining.md)
- ``metrics``: AUC / AP / MRR in NumPy (synthetic test graphs: ``mdr_graph.testing.graphs``)
"""
