"""Checkpoints in the artifact store (local path or s3:// prefix) and resuming from the newest one.

Layout of one checkpoint, ``<checkpoint-dir>/step-00000040/``::

    model/                Hugging Face format (config.json, model.safetensors, tokenizer, chat template)
    optimizer.pt          AdamW state
    scheduler.pt          LR scheduler state
    rng/rank-<r>.pt       each rank's Python, torch CPU and CUDA RNG states
    state.json            step, sampler position (epoch, offset), MLflow run id, world size, loss
    COMPLETE              written last, by rank 0, after every rank has written: only checkpoints
                          with this marker are resumed from, so a save cut off half-way is ignored
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer import distributed
from trainer.distributed import World
from trainer.storage import Location

MARKER = "COMPLETE"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def step_dir(step: int) -> str:
    """Directory name of the checkpoint taken after ``step`` optimizer steps."""
    return f"step-{step:08d}"


@dataclass
class TrainerState:
    """What a restart needs besides tensors: where the loop and the data sampler stand."""

    step: int
    epoch: int
    offset: int
    run_id: str | None
    world_size: int
    loss: float | None = None


@dataclass
class Restored:
    """A checkpoint read back: the model directory to load plus the states to apply."""

    step: int
    model_dir: Path
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any] | None
    state: TrainerState


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``_rng_state`` captured."""
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class Checkpoints:
    """The checkpoints of one job in one directory (local or S3), newest ``keep`` kept."""

    def __init__(self, uri: str, world: World, scratch: Path, keep: int = 2) -> None:
        self.location = Location(uri)
        self.world = world
        self.scratch = scratch
        self.keep = keep

    @property
    def uri(self) -> str:
        """Where the checkpoints live."""
        return self.location.uri

    def complete_steps(self) -> list[int]:
        """Steps that have a complete checkpoint, oldest first."""
        steps = []
        for name in self.location.subdirs():
            match = _STEP_DIR.match(name)
            if match and self.location.exists(f"{name}/{MARKER}"):
                steps.append(int(match.group(1)))
        return sorted(steps)

    def latest(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        steps = self.complete_steps()
        return steps[-1] if steps else None

    def save(
        self,
        state: TrainerState,
        model: Any,
        tokenizer: Any,
        optimizer: Any,
        scheduler: Any,
    ) -> None:
        """Write a checkpoint collectively (every rank calls this); the marker goes last."""
        import torch

        name = step_dir(state.step)
        local = self.scratch / name
        shutil.rmtree(local, ignore_errors=True)
        local.mkdir(parents=True)
        rng_file = local / f"rank-{self.world.rank}.pt"
        torch.save(_rng_state(), rng_file)
        self.location.put_file(rng_file, f"{name}/rng/rank-{self.world.rank}.pt")
        if self.world.is_main:
            model.save_pretrained(local / "model")
            tokenizer.save_pretrained(local / "model")
            torch.save(optimizer.state_dict(), local / "optimizer.pt")
            torch.save(scheduler.state_dict(), local / "scheduler.pt")
            (local / "state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
            self.location.put_dir(local / "model", f"{name}/model")
            for part in ("optimizer.pt", "scheduler.pt", "state.json"):
                self.location.put_file(local / part, f"{name}/{part}")
        distributed.barrier(self.world)
        if self.world.is_main:
            self.location.put_text(json.dumps({"step": state.step}) + "\n", f"{name}/{MARKER}")
            self._prune(state.step)
        shutil.rmtree(local, ignore_errors=True)
        distributed.barrier(self.world)

    def _prune(self, newest: int) -> None:
        complete = self.complete_steps()
        stale = set(complete[: -self.keep]) if len(complete) > self.keep else set()
        for name in self.location.subdirs():
            match = _STEP_DIR.match(name)
            if not match:
                continue
            step = int(match.group(1))
            # An incomplete directory older than the newest complete one is a save cut off by a kill.
            if step in stale or (step < newest and step not in complete):
                self.location.delete_dir(name)

    def load(self, step: int) -> Restored:
        """Fetch a complete checkpoint into the scratch directory and read its states."""
        import torch

        name = step_dir(step)
        local = self.scratch / f"restore-{name}"
        shutil.rmtree(local, ignore_errors=True)
        self.location.get_dir(f"{name}/model", local / "model")
        for part in ("optimizer.pt", "scheduler.pt", "state.json"):
            self.location.get_file(f"{name}/{part}", local / part)
        rng = None
        rng_name = f"{name}/rng/rank-{self.world.rank}.pt"
        if self.location.exists(rng_name):
            rng = torch.load(self.location.get_file(rng_name, local / "rng.pt"), weights_only=False)
        state = TrainerState(**json.loads((local / "state.json").read_text(encoding="utf-8")))
        return Restored(
            step=step,
            model_dir=local / "model",
            optimizer=torch.load(local / "optimizer.pt", weights_only=False),
            scheduler=torch.load(local / "scheduler.pt", weights_only=False),
            rng=rng,
            state=state,
        )
