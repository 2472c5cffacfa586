"""Make ``hetero_graph`` (the heterogeneous test-graph helper beside this file) importable.

The suite runs with ``--import-mode=importlib``, which does not put test directories on
``sys.path``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
