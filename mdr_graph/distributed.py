"""Plain PyTorch DistributedDataParallel plumbing, started by ``torchrun``.

``torchrun --standalone --nproc_per_node=N -m mdr_graph train ...`` sets RANK,
WORLD_SIZE and LOCAL_RANK; :func:`init_from_env` joins the process group (gloo on
CPU, nccl on GPU). Without those variables everything runs as one process.
Rank 0 alone writes files; evaluation shards a split as ``indices[rank::world]`` so
every video is scored exactly once, and :func:`gather` reassembles the whole split
on every rank before any metric is computed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: str = "cpu") -> DistInfo:
    """Join the process group when launched by torchrun; a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def device_for(info: DistInfo, device: str) -> torch.device:
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            from mdr_graph.errors import UserError

            raise UserError("--device cuda was asked for but no CUDA device is visible; use --device cpu")
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def shard_indices(n: int, info: DistInfo) -> list[int]:
    """This rank's share of ``range(n)``: disjoint across ranks, covering every index once."""
    return list(range(info.rank, n, info.world_size))


def gather(obj, info: DistInfo) -> list:
    """``[obj_rank0, obj_rank1, ...]`` on every rank (just ``[obj]`` without DDP)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def unstride(pieces: list, n: int):
    """Reassemble ``[piece_rank0, piece_rank1, ...]`` of ``x[rank::world]`` slices into ``x`` (tensors)."""
    if len(pieces) == 1:
        return pieces[0]
    out = pieces[0].new_empty((n, *pieces[0].shape[1:]))
    for r, piece in enumerate(pieces):
        out[r::len(pieces)] = piece
    return out


def all_reduce_sum(t: torch.Tensor, info: DistInfo, device: torch.device | None = None) -> torch.Tensor:
    """Elementwise sum of ``t`` over ranks, returned on ``t``'s device (nccl reduces on ``device``)."""
    if not info.enabled:
        return t
    work = t.to(device) if device is not None else t
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(t.device)


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` on every rank (``obj`` itself without DDP)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Tear the group down together. Without the barrier, a rank that finished first destroyed its gloo
    context while rank 0 was still writing the run files; once (1 run of tests/test_distributed.py in
    about 20) a rank aborted in that teardown ("terminate called without an active exception") after a
    complete run. A barrier first is the usual mitigation of gloo's teardown race, not a proven cure."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
