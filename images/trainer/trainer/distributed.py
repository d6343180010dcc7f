"""The process group as torchrun and the Kubeflow training operator describe it in the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from trainer.errors import TrainerError


@dataclass(frozen=True)
class World:
    """This process's place in the job: WORLD_SIZE, RANK, LOCAL_RANK (1, 0, 0 without torchrun)."""

    size: int
    rank: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """Rank 0 logs to MLflow, serves metrics, writes the shared checkpoint files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is a process group to talk to."""
        return self.size > 1


def from_env() -> World:
    """Read WORLD_SIZE/RANK/LOCAL_RANK; MASTER_ADDR/MASTER_PORT are needed only when WORLD_SIZE > 1."""
    try:
        world = World(
            size=int(os.environ.get("WORLD_SIZE", "1")),
            rank=int(os.environ.get("RANK", "0")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError as exc:
        raise TrainerError(f"WORLD_SIZE/RANK/LOCAL_RANK must be whole numbers ({exc})") from None
    if world.size > 1 and not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        raise TrainerError(
            f"WORLD_SIZE is {world.size} but MASTER_ADDR/MASTER_PORT are not set; launch with torchrun"
        )
    if not 0 <= world.rank < world.size:
        raise TrainerError(f"RANK {world.rank} is outside WORLD_SIZE {world.size}")
    return world


def start(world: World) -> Any:
    """Pick the device and join the process group: nccl on CUDA, gloo on CPU. Returns the device."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
        device = torch.device("cuda", world.local_rank)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if world.distributed and not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(minutes=30)}
        if backend == "nccl":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
    return device


def stop(world: World) -> None:
    """Leave the process group."""
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait for every rank."""
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def mean(world: World, value: Any) -> Any:
    """Mean of a scalar tensor over the ranks."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world.size


def total(world: World, value: Any) -> Any:
    """Sum of a tensor over the ranks."""
    if world.distributed:
        import torch.distributed as dist

        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def share(world: World, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; for small things such as a tokenizer's JSON)."""
    if not world.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
