"""mdr-graph: predict short-video popularity from the song-video graph, pictures, sound and metadata."""

__version__ = "0.1.0"
