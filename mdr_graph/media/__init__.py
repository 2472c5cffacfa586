"""Media features of videos: sampled frames, MFCC / log filter banks and Whisper, stored in shards.

- :mod:`.decode`: PyAV decoding (segment-uniform frame sampling by seek or scan, mono audio)
- :mod:`.audio_features`: MFCC and log mel filter banks (torchaudio transforms)
- :mod:`.whisper_features`: offline Whisper loading, embedding, transcript and language
- :mod:`.corpus`: the graph's video table, safe media paths, the stable ``video_id`` shard hash
- :mod:`.store`: the on-disk layout and :class:`~mdr_graph.media.store.FeatureStore`, the lazy reader
- :mod:`.extract_config`: :class:`~mdr_graph.media.extract_config.ExtractConfig`, what a
  ``FEATDIR`` was extracted with (read by the store and the extraction alike)
- :mod:`.extract`: ``extract_video``, the resumable and shardable ``run_extract`` and ``merge``
- :mod:`.cli`: ``mdr-graph extract``
"""
