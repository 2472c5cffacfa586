"""`python -m mdr_graph ...` (and `torchrun -m mdr_graph ...`) run the same CLI as `mdr-graph`."""

import sys

from mdr_graph.cli import main

sys.exit(main())
