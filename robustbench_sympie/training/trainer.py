"""The SyMPIE trainer: one training run of Algorithm 1 (:mod:`.step`) from its settings (:mod:`.config`) to its
files (:mod:`.checkpoint`), with held-out evaluations (:mod:`.evaluate`). :func:`train` is the entry point.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..datasets import expand_corruptions
from ..errors import SuiteError
from ..imageio import ImageRecord, Preprocess, evenly_spaced, scan_image_folder
from .checkpoint import (
    CHECKPOINT_NAME,
    LOG_NAME,
    JsonlLog,
    load_checkpoint,
    save_checkpoint,
    save_weights,
    set_rng_states,
)
from .config import RECIPE_KEYS, TrainConfig, TrainingConfigError
from .data import CorruptedTrainingSet, HeldOutSet, RandomCrop, build_held_out, training_loader
from .evaluate import evaluate
from .step import (
    Models,
    as_input,
    calibrate_batch_norms,
    ema_update,
    lr_schedule,
    parameter_groups,
    set_training_mode,
    train_step,
    warp_part_masks,
)
from .warp_basis import use_warp_basis


@dataclass
class TrainResult:
    """What a run produced: where it stopped, its evaluations and its files."""

    step: int
    finished: bool
    evaluations: list[dict[str, Any]]
    checkpoint: Path
    student_weights: Path | None = None
    ema_weights: Path | None = None


def resolve_device(name: str) -> torch.device:
    """The shared resolver (:func:`robustbench_sympie.device.resolve_device`), its errors as
    :class:`TrainingConfigError`."""
    from ..device import resolve_device as resolve

    try:
        return resolve(name)
    except SuiteError as exc:
        raise TrainingConfigError(str(exc).replace("--device", "device", 1)) from None


def build_models(config: TrainConfig, device: torch.device) -> Models:
    """The frozen downstream model, a fresh (identity) or initialised SyMPIE in train mode, and its EMA copy."""
    from ..enhancers.sympie import Sympie
    from ..models import create_model

    classifier = create_model(config.model).to(device)
    student = Sympie(weights=config.init_weights, downstream_model=config.model).to(device)
    student.clamp_in_training = config.clamp_in_training
    set_training_mode(student, config.bn_mode)
    student.requires_grad_(True)
    if config.freeze_backbone:
        student.nem.backbone.requires_grad_(False)
    if config.warp_basis == "preconditioned":
        use_warp_basis(student.nem, config.basis_kappa)
        student.to(device)
    ema = copy.deepcopy(student).eval().requires_grad_(False)
    if config.channels_last:
        for module in (classifier, student, ema):
            module.to(memory_format=torch.channels_last)
    return Models(classifier, student, ema, warp_part_masks(student, config.warp_parts))


def _disjoint(train: list[ImageRecord], held_out: list[ImageRecord]) -> list[ImageRecord]:
    held = {r.path.resolve() for r in held_out}
    return [r for r in train if r.path.resolve() not in held]


def select_records(
    config: TrainConfig,
    train_records: Sequence[ImageRecord] | None = None,
    held_out_records: Sequence[ImageRecord] | None = None,
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Training and held-out records.

    Training images come from ``train_records`` or ``data_root``; held-out images from ``held_out_records``,
    ``val_root``, or else every ``val_every_nth`` training image. Held-out images are never trained on, and
    are thinned to ``val_limit`` (evenly spaced).
    """
    if train_records is None:
        if config.data_root is None:
            raise TrainingConfigError("no training data: pass --data-root DIR (an ImageNet-style image folder)")
        train_records = scan_image_folder(config.data_root)
    train = list(train_records)
    if held_out_records is not None:
        held_out = list(held_out_records)
    elif config.val_root is not None:
        held_out = scan_image_folder(config.val_root)
    else:
        held_out = train[:: config.val_every_nth]
    train = _disjoint(train, held_out)
    if not train:
        raise TrainingConfigError("no training images left once the held-out images are set aside")
    return train, evenly_spaced(held_out, config.val_limit)


def ids_digest(records: Sequence[ImageRecord]) -> str:
    """A fingerprint of the training set (its image ids and labels), checked on resume."""
    text = "\n".join(f"{r.image_id}\t{r.label}" for r in records)
    return hashlib.sha256(text.encode()).hexdigest()


def _run_info(config: TrainConfig, pool: list[str], train: list[ImageRecord], held_out: list[ImageRecord],
              device: torch.device) -> dict[str, Any]:
    info = {k: (str(Path(v).resolve()) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    info.update(
        corruptions=pool,
        severities=list(config.severities),
        val_severities=list(config.val_severities),
        n_train_images=len(train),
        n_held_out_images=len(held_out),
        train_ids_sha256=ids_digest(train),
        device=str(device),
    )
    return info


def _weights_metadata(info: dict[str, Any], step: int, last_eval: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "downstream_model": info["model"],
        "training_data": info["data_root"],
        "n_train_images": info["n_train_images"],
        "held_out_data": info["val_root"] or f"every {info['val_every_nth']}th image of the training data",
        "n_held_out_images": info["n_held_out_images"],
        "iterations": step,
        "batch_size": info["batch_size"],
        "lr": info["lr"],
        "ema_rate": info["ema_rate"],
        "seed": info["seed"],
        "corruption_pool": info["corruptions"],
        "severities": info["severities"],
        "crop": info["crop"],
        "resize": info["resize"],
        "recipe": {k: info[k] for k in RECIPE_KEYS},
        "held_out_top1": last_eval,
    }


class _Trainer:
    """State of one run; :func:`train` is the entry point."""

    def __init__(self, config: TrainConfig, train_records: list[ImageRecord], held_out_records: list[ImageRecord]):
        self.config = config
        self.device = resolve_device(config.device)
        self.amp = config.amp and self.device.type == "cuda"
        pool = expand_corruptions(config.corruptions)
        val_pool = pool if config.val_corruptions is None else expand_corruptions(config.val_corruptions)
        self.info = _run_info(config, pool, train_records, held_out_records, self.device)
        self.checkpoint_path = Path(config.out) / CHECKPOINT_NAME
        resumed = load_checkpoint(self.checkpoint_path, self.info) if config.resume else None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.models = build_models(config, self.device)
        self.optimizer = torch.optim.Adam(
            parameter_groups(self.models.student, config.lr, config.bias_lr, config.head_lr))
        self.scheduler = lr_schedule(self.optimizer, iterations=config.iterations, warmup=config.warmup)
        self.step = 0
        self._in_step = False
        self.evaluations: list[dict[str, Any]] = []
        if resumed is not None:
            self._restore(resumed)
        self.dataset = self.training_set(train_records, pool)
        self.held_out = self.held_out_set(held_out_records, val_pool).to(self.device)
        self.log = JsonlLog(Path(config.out) / LOG_NAME, keep_until=self.step if resumed is not None else None)
        (Path(config.out) / "config.json").write_text(json.dumps(self.info, indent=2, default=str) + "\n")

    def training_set(self, records: list[ImageRecord], pool: list[str]) -> CorruptedTrainingSet:
        """The training sample stream (random crops, one random corruption each)."""
        config = self.config
        return CorruptedTrainingSet(records, pool, seed=config.seed, geometry=RandomCrop(config.resize, config.crop),
                                    severities=config.severities)

    def held_out_set(self, records: list[ImageRecord], pool: list[str]) -> HeldOutSet:
        """The held-out images, clean and with their fixed corruption (on the CPU)."""
        config = self.config
        return build_held_out(records, pool, seed=config.seed, preprocess=Preprocess(config.resize, config.crop),
                              severities=config.val_severities, workers=config.workers)

    def scores(self) -> dict[str, float]:
        """The held-out scores of the current models (top-1 %)."""
        return evaluate(self.models, self.held_out, batch_size=2 * self.config.batch_size, amp=self.amp,
                        channels_last=self.config.channels_last)

    def _restore(self, state: dict[str, Any]) -> None:
        self.models.student.load_state_dict(state["student"])
        self.models.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"])
        self.step = int(state["step"])

    def calibrate(self) -> None:
        """BN running statistics from the first training batches (``bn_mode="calibrated"``, fresh runs only)."""
        count = self.config.bn_calibration_batches
        loader = training_loader(self.dataset, batch_size=self.config.batch_size, start_step=0, stop_step=count,
                                 workers=self.config.workers, pin_memory=False)
        batches = (as_input(images.to(self.device), self.config.channels_last) for images, _ in loader)
        calibrate_batch_norms(self.models.student, batches)
        set_training_mode(self.models.student, self.config.bn_mode)
        self.models.ema.load_state_dict(self.models.student.state_dict())

    def save_checkpoint(self) -> None:
        save_checkpoint(self.checkpoint_path, step=self.step, models=self.models, optimizer=self.optimizer,
                        scheduler=self.scheduler, run_info=self.info)

    def run_eval(self) -> dict[str, Any]:
        scores = self.scores()
        record = {"kind": "eval", "step": self.step, **{k: round(v, 3) for k, v in scores.items()}}
        self.evaluations.append(record)
        self.log.write(record)
        return record

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _eval_due(self) -> bool:
        every = self.config.eval_every
        done = bool(self.evaluations) and self.evaluations[-1]["step"] == self.step
        return every > 0 and not done and (self.step % every == 0 or self.step == self.config.iterations)

    def fit(self) -> TrainResult:
        config = self.config
        stop = max(self.step, min(config.iterations, config.stop_after or config.iterations))
        if self.step == 0 and config.bn_mode == "calibrated":
            self.calibrate()
        if self.step == 0 and config.eval_every > 0:
            self.run_eval()
        if self.step < stop:
            self._loop(stop)
        self.save_checkpoint()
        return self._result()

    def _loop(self, stop: int) -> None:
        config = self.config
        loader = training_loader(self.dataset, batch_size=config.batch_size, start_step=self.step, stop_step=stop,
                                 workers=config.workers, pin_memory=self.device.type == "cuda")
        progress = _progress(total=config.iterations, initial=self.step, enabled=config.progress)
        window_start, window_steps, window_losses = time.perf_counter(), 0, None
        postfix: dict[str, float] = {}
        try:
            for images, labels in loader:
                losses = self._step(images, labels)
                window_losses = losses if window_losses is None else window_losses + losses
                window_steps += 1
                progress.update(1)
                if self._due(config.log_every) or self.step == stop:
                    postfix["loss"] = self._log_train(window_losses / window_steps, window_steps, window_start)["loss"]
                    window_start, window_steps, window_losses = time.perf_counter(), 0, None
                if self._eval_due():
                    postfix["ema_top1"] = self.run_eval()["enhanced_ema"]
                if self._due(config.checkpoint_every):
                    self.save_checkpoint()
                progress.set_postfix(postfix, refresh=False)
        except KeyboardInterrupt:
            if not self._in_step:  # the state is consistent between steps only
                self.save_checkpoint()
            raise
        finally:
            progress.close()
            del loader

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = as_input(images.to(self.device, non_blocking=True), self.config.channels_last)
        labels = labels.to(self.device, non_blocking=True)
        self._in_step = True
        losses = train_step(self.models, self.optimizer, images, labels, amp=self.amp,
                            grad_clip=self.config.grad_clip)
        self.scheduler.step()
        ema_update(self.models.ema, self.models.student, self.config.ema_rate)
        self.step += 1
        self._in_step = False
        return losses

    def _log_train(self, mean_losses: torch.Tensor, steps: int, since: float) -> dict[str, Any]:
        loss1, loss2 = mean_losses.tolist()
        elapsed = time.perf_counter() - since
        record = {
            "kind": "train",
            "step": self.step,
            "loss": round(loss1 + loss2, 5),
            "loss1": round(loss1, 5),
            "loss2": round(loss2, 5),
            "lr": self.scheduler.get_last_lr()[0],
            "images_per_s": round(steps * self.config.batch_size / max(elapsed, 1e-9), 1),
        }
        self.log.write(record)
        return record

    def _result(self) -> TrainResult:
        finished = self.step >= self.config.iterations
        result = TrainResult(self.step, finished, self.evaluations, self.checkpoint_path)
        if finished:
            last_eval = self.evaluations[-1] if self.evaluations else None
            metadata = _weights_metadata(self.info, self.step, last_eval)
            result.student_weights, result.ema_weights = save_weights(
                self.models, Path(self.config.out), metadata, half=self.config.fp16_weights)
        return result


def _progress(*, total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)


def train(
    config: TrainConfig,
    *,
    train_records: Sequence[ImageRecord] | None = None,
    held_out_records: Sequence[ImageRecord] | None = None,
) -> TrainResult:
    """Train SyMPIE for ``config.model`` and return what the run produced (see :func:`select_records` for
    where the images come from; records given here replace the folders of ``config``)."""
    config.validate()
    train_list, held_out_list = select_records(config, train_records, held_out_records)
    return _Trainer(config, train_list, held_out_list).fit()
