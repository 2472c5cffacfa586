"""Helpers for the tests and benchmarks only: no module of the package imports this subpackage
(``tests/test_imports.py`` checks it).

- :mod:`.clips`: mp4 clips whose frames encode their index, with an optional tone (PyAV)
- :mod:`.graphs`: a synthetic heterogeneous ``HeteroData`` with learnable links, for the GAT

The planted corpus that the demo and the learning tests use is a user-facing stage of its
own, :mod:`mdr_graph.synth` (``mdr-graph synth``).
"""
