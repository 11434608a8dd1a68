"""The files of a training run: the checkpoint (``OUT/last.pt``), the log (``OUT/log.jsonl``) and the final
NEM weights.

Checkpoints hold everything a resumed run needs to continue bit for bit on the same device (models, optimizer,
scheduler, RNG states); the data stream is keyed by sample number (see :mod:`.data`), so it resumes exactly too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..errors import DataError
from ..safe_load import safe_torch_load
from .config import RESUME_KEYS, TrainingConfigError
from .step import Models
from .warp_basis import fold_output_layers

CHECKPOINT_NAME = "last.pt"
LOG_NAME = "log.jsonl"
STUDENT_WEIGHTS = "sympie.safetensors"
EMA_WEIGHTS = "sympie_ema.safetensors"
CHECKPOINT_VERSION = 1


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, *, step: int, models: Models, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, run_info: dict[str, Any]) -> None:
    """Write everything needed to resume after ``step`` to ``path`` (temp file + rename)."""
    _atomic_torch_save(
        {
            "version": CHECKPOINT_VERSION,
            "step": step,
            "student": models.student.state_dict(),
            "ema": models.ema.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_states(),
            "run": run_info,
        },
        path,
    )


def load_checkpoint(path: Path, run_info: dict[str, Any]) -> dict[str, Any]:
    """Read ``path`` and check that it belongs to a run with the same settings as ``run_info``."""
    if not path.is_file():
        raise TrainingConfigError(f"--resume: no checkpoint at {path}")
    try:
        state = safe_torch_load(path, what="a train_sympie checkpoint")
    except DataError as exc:
        raise TrainingConfigError(f"--resume: {exc}") from None
    except Exception as exc:
        raise TrainingConfigError(f"--resume: cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise TrainingConfigError(f"--resume: {path} is not a train_sympie checkpoint (version {CHECKPOINT_VERSION})")
    saved = state["run"]
    differ = [f"{k}: checkpoint {saved.get(k)!r}, now {run_info.get(k)!r}"
              for k in RESUME_KEYS if saved.get(k) != run_info.get(k)]
    if differ:
        raise TrainingConfigError(f"--resume: settings differ from the checkpoint's ({'; '.join(differ)})")
    return state


class JsonlLog:
    """Append-only JSON-lines log; on resume, entries after the resumed step are dropped first."""

    def __init__(self, path: Path, *, keep_until: int | None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if keep_until is None:
            path.write_text("")
        elif path.exists():
            kept = [line for line in path.read_text().splitlines() if self._step_of(line) <= keep_until]
            path.write_text("".join(line + "\n" for line in kept))

    @staticmethod
    def _step_of(line: str) -> float:
        """The step of a log line; unreadable lines (a write cut short) sort after every step."""
        try:
            return json.loads(line).get("step", 0)
        except (json.JSONDecodeError, AttributeError):
            return float("inf")

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def save_weights(models: Models, out: Path, metadata: dict[str, Any], *, half: bool) -> tuple[Path, Path]:
    """The student's and the EMA's NEM as ``sympie.safetensors`` and ``sympie_ema.safetensors`` (+ json)."""
    from ..enhancers.sympie_weights import save_nem_weights

    student = save_nem_weights(fold_output_layers(models.student.nem), out / STUDENT_WEIGHTS,
                               {**metadata, "weights": "student"}, half=half)
    ema = save_nem_weights(fold_output_layers(models.ema.nem), out / EMA_WEIGHTS, {**metadata, "weights": "ema"},
                           half=half)
    return student, ema
