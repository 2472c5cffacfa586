"""Link-prediction pretraining of the heterogeneous video-song-creator-hashtag GAT, and its frozen embeddings.

- ``config``: ``GATConfig`` (the settings of ``mdr-graph pretrain``) and its choice lists, without torch
- ``model``: ``HeteroGAT`` (``HeteroConv`` of ``GATConv``; ``model(x_dict, edge_index_dict) ->
  {type: [n, d]}``), ``LinkDecoders`` (one per relation)
- ``parts``: the tensors of a graph the GAT needs (node types, relations, features, ids)
- ``linksplit``: the leak-free ``RandomLinkSplit`` of every relation's links and negative sampling
- ``batching``: exact mini-batches on k-hop induced subgraphs (no neighbour sampler)
- ``trainer``: ``train(data, cfg, rundir)``: the link-prediction epoch and per-relation metrics, on the
  shared loop skeleton (:mod:`mdr_graph.trainloop`: early stopping, checkpoints, ``--resume``)
- ``gat_file``: the ``gat.pt`` format (constants, ``pack_ids``/``unpack_ids``, the payload), all its readers need
- ``convlstm``: ``mdr-graph pretrain-visual``, the ConvLSTM autoencoder pretrained by reconstruction
- ``embed``: ``load_gat``, ``embed_graph``, ``embed_new``, ``embedding_dim``: the network modality's
  ``neighbours`` / ``song`` / ``video`` embeddings on the forecaster's view of the graph (see docs/pretraining.md)
- ``metrics``: AUC / AP / MRR in NumPy (synthetic test graphs: ``mdr_graph.testing.graphs``)
"""
