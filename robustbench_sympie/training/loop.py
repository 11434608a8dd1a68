"""The SyMPIE training loop: Algorithm 1 of Barbato et al. (MMSys 2024) for one frozen downstream classifier.

One step on a batch ``x`` of corrupted images with labels ``y``:

1. ``loss1 = CE(model(sympie(x)), y)``; its gradient is computed;
2. ``u = ema(x)`` without gradient (the EMA enhancer in eval mode, so clamped to the image range);
   ``loss2 = CE(model(sympie(u)), y)``; the gradient of ``0.5 * loss2`` is computed;
3. each parameter's gradient from each of the two passes is rescaled to norm <= 1 (the released code does
   this with per-parameter hooks, which see each backward pass separately), the two are summed, and Adam
   (lr 1e-3, cosine schedule over all iterations) steps;
4. the EMA enhancer becomes ``rate * ema + (1 - rate) * sympie`` over the whole state dict (BN buffers too).

The downstream model is frozen and in eval mode throughout; on CUDA its forward runs under bf16 autocast.
Options beyond the released recipe (all off by default; see the README's training section): calibrated and
frozen BN statistics, the inference clamp during training, separate rates for the output layer, a frozen NEM
backbone, training only the colour part of the warp, warm-up, and Adam in a preconditioned basis of the warp
parameters (:mod:`.warp_basis`).
Checkpoints (``OUT/last.pt``) hold everything a resumed run needs to continue bit for bit on the same
device; the data stream is keyed by sample number (see :mod:`.data`), so it resumes exactly too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..atomic import atomic_path
from ..datasets import expand_corruptions
from ..errors import DataError, SuiteError
from ..imageio import ImageRecord, Preprocess, evenly_spaced, scan_image_folder
from ..safe_load import safe_torch_load
from .data import (
    HELD_OUT_SEVERITIES,
    TRAIN_SEVERITIES,
    CorruptedTrainingSet,
    HeldOutSet,
    RandomCrop,
    build_held_out,
    training_loader,
)
from .warp_basis import fold_output_layers, use_warp_basis

CHECKPOINT_NAME = "last.pt"
LOG_NAME = "log.jsonl"
STUDENT_WEIGHTS = "sympie.safetensors"
EMA_WEIGHTS = "sympie_ema.safetensors"
CHECKPOINT_VERSION = 1
#: settings a resumed run must share with the checkpoint for the continuation to be exact
RESUME_KEYS: tuple[str, ...] = (
    "model", "iterations", "batch_size", "lr", "ema_rate", "seed", "corruptions", "severities",
    "resize", "crop", "grad_clip", "train_ids_sha256", "head_lr", "bias_lr", "freeze_backbone", "bn_mode",
    "bn_calibration_batches", "clamp_in_training", "warmup", "warp_parts", "warp_basis", "basis_kappa",
)
#: how the NEM's batch norms behave while training
BN_MODES: tuple[str, ...] = ("batch", "calibrated")
#: which outputs of the NEM training may move: ``all`` (released) or ``colour`` (matrix and shift only; the
#: 5 x 5 kernel stays the identity)
WARP_PARTS: tuple[str, ...] = ("all", "colour")
#: coordinates Adam trains the NEM's output layer in (see :mod:`.warp_basis`)
WARP_BASES: tuple[str, ...] = ("released", "preconditioned")


class TrainingConfigError(SuiteError, ValueError):
    """Settings the training run cannot use (the message says which and why)."""


def default_workers() -> int:
    """DataLoader workers: all cores but two (the training process and the pinning thread), at most 16."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(0, min(16, cores - 2))


@dataclass
class TrainConfig:
    """Every setting of a training run (the CLI's flags map one to one onto these fields)."""

    out: Path
    data_root: Path | None = None
    val_root: Path | None = None
    model: str = "efficientnet_lite0"
    iterations: int = 2000
    batch_size: int = 48
    lr: float = 1e-3
    #: learning rate of the NEM's output weight (the image-dependent part of the warp); None: ``lr``
    head_lr: float | None = None
    #: learning rate of the NEM's output bias (the image-independent part of the warp); None: ``lr``
    bias_lr: float | None = None
    #: train only the NEM's output layer (its convolutions keep their initial or ``init_weights`` values)
    freeze_backbone: bool = False
    #: ``batch``: BN on batch statistics while training (released); ``calibrated``: running statistics
    #: estimated on ``bn_calibration_batches`` training batches before the first step, then BN runs in eval
    #: mode throughout, so training and inference compute the same function
    bn_mode: str = "batch"
    bn_calibration_batches: int = 8
    #: clamp the warped image to the image range while training too (the released loop clamps at inference only)
    clamp_in_training: bool = False
    #: steps of linear learning-rate warm-up before the cosine decay
    warmup: int = 0
    #: ``all`` (released) or ``colour``: only the colour matrix and shift are trained, the kernel stays a delta
    warp_parts: str = "all"
    #: ``released`` (Adam on the 37 parameters as released) or ``preconditioned`` (Adam on luminance moves at
    #: full scale and on colour-balance, off-diagonal and kernel moves scaled by ``basis_kappa``; the saved
    #: weights are folded back into the released layout)
    warp_basis: str = "released"
    basis_kappa: float = 0.1
    ema_rate: float = 0.9
    grad_clip: float = 1.0
    workers: int = field(default_factory=default_workers)
    device: str = "auto"
    amp: bool = True
    channels_last: bool = False
    checkpoint_every: int = 500
    eval_every: int = 250
    log_every: int = 10
    resume: bool = False
    stop_after: int | None = None
    seed: int = 0
    corruptions: str | Sequence[str] = "sympie_training"
    severities: Sequence[int] = TRAIN_SEVERITIES
    val_corruptions: str | Sequence[str] | None = None
    val_severities: Sequence[int] = HELD_OUT_SEVERITIES
    val_limit: int | None = 1000
    val_every_nth: int = 20
    resize: int = 256
    crop: int = 224
    init_weights: str | None = None
    fp16_weights: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Raise :class:`TrainingConfigError` for settings that cannot work."""
        positive = {"iterations": self.iterations, "batch_size": self.batch_size, "log_every": self.log_every,
                    "val_every_nth": self.val_every_nth}
        problems = [f"{k} must be positive, got {v}" for k, v in positive.items() if v <= 0]
        problems += [f"{k} must be >= 0 (0 disables), got {v}" for k, v in
                     {"checkpoint_every": self.checkpoint_every, "eval_every": self.eval_every,
                      "workers": self.workers}.items() if v < 0]
        if not 0.0 <= self.ema_rate < 1.0:
            problems.append(f"ema_rate must be in [0, 1), got {self.ema_rate}")
        if self.lr <= 0 or self.grad_clip <= 0:
            problems.append(f"lr and grad_clip must be positive, got {self.lr}, {self.grad_clip}")
        if self.bn_mode not in BN_MODES:
            problems.append(f"bn_mode must be one of {', '.join(BN_MODES)}, got {self.bn_mode!r}")
        if self.warp_parts not in WARP_PARTS:
            problems.append(f"warp_parts must be one of {', '.join(WARP_PARTS)}, got {self.warp_parts!r}")
        if self.warp_basis not in WARP_BASES:
            problems.append(f"warp_basis must be one of {', '.join(WARP_BASES)}, got {self.warp_basis!r}")
        if not 0 < self.basis_kappa <= 1:
            problems.append(f"basis_kappa must be in (0, 1], got {self.basis_kappa}")
        if self.bn_calibration_batches <= 0:
            problems.append(f"bn_calibration_batches must be positive, got {self.bn_calibration_batches}")
        if self.warmup < 0 or self.warmup >= self.iterations:
            problems.append(f"warmup must be in [0, iterations), got {self.warmup}")
        if any(v is not None and v <= 0 for v in (self.head_lr, self.bias_lr)):
            problems.append(f"head_lr and bias_lr must be positive, got {self.head_lr}, {self.bias_lr}")
        if self.crop < 43 or self.resize < self.crop:
            problems.append(f"need resize >= crop >= 43 (the NEM's smallest input), got {self.resize}/{self.crop}")
        if self.stop_after is not None and self.stop_after <= 0:
            problems.append(f"stop_after must be positive, got {self.stop_after}")
        if self.val_limit is not None and self.val_limit <= 0:
            problems.append(f"val_limit must be positive, got {self.val_limit}")
        if problems:
            raise TrainingConfigError("; ".join(problems))


@dataclass
class TrainResult:
    """What a run produced: where it stopped, its evaluations and its files."""

    step: int
    finished: bool
    evaluations: list[dict[str, Any]]
    checkpoint: Path
    student_weights: Path | None = None
    ema_weights: Path | None = None


@dataclass
class Models:
    """The frozen downstream classifier, the trained enhancer and its EMA copy."""

    classifier: nn.Module
    student: nn.Module
    ema: nn.Module
    #: per trainable parameter, a 0/1 mask its gradient is multiplied by (None: all of it trains)
    grad_masks: list[torch.Tensor | None] = field(default_factory=list)

    @property
    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.student.parameters() if p.requires_grad]


def warp_part_masks(student: nn.Module, warp_parts: str) -> list[torch.Tensor | None]:
    """Gradient masks that keep the NEM's kernel outputs (rows 12..36 of its output layer) untrained when
    ``warp_parts == "colour"``; all ``None`` for ``"all"``."""
    params = [p for p in student.parameters() if p.requires_grad]
    if warp_parts == "all":
        return [None] * len(params)
    out = student.nem.out
    masks: list[torch.Tensor | None] = []
    for param in params:
        if param is out.weight or param is out.bias:
            mask = torch.zeros_like(param)
            mask[:12] = 1  # 9 matrix entries and 3 shifts
            masks.append(mask)
        else:
            masks.append(None)
    return masks


def parameter_groups(student: nn.Module, lr: float, bias_lr: float | None,
                     head_lr: float | None = None) -> list[dict[str, Any]]:
    """Adam groups: the NEM's output bias at ``bias_lr`` and output weight at ``head_lr`` (when given),
    every other trainable parameter at ``lr``. Empty groups are left out.

    The bias is the warp the NEM predicts for every image alike; the output weight turns the NEM's 512 pooled
    features into the image-dependent part of the warp. With Adam, every weight moves by about its rate per
    step, so one step moves an output by about ``head_lr`` times the sum of the features' magnitudes: the
    output layer usually wants a much smaller rate than the convolutions.
    """
    params = [p for p in student.parameters() if p.requires_grad]
    out = getattr(getattr(student, "nem", None), "out", None)
    special = {"bias": (getattr(out, "bias", None), bias_lr), "weight": (getattr(out, "weight", None), head_lr)}
    special = {k: (p, r) for k, (p, r) in special.items() if p is not None and r is not None and p.requires_grad}
    taken = {id(p) for p, _ in special.values()}
    groups = [{"params": [p for p in params if id(p) not in taken], "lr": lr}]
    groups += [{"params": [p], "lr": r} for p, r in special.values()]
    return [g for g in groups if g["params"]]


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def set_training_mode(student: nn.Module, bn_mode: str) -> None:
    """``student.train()``, with its batch norms back in eval mode when their statistics are calibrated."""
    student.train()
    if bn_mode == "calibrated":
        for norm in batch_norms(student):
            norm.eval()


@torch.no_grad()
def calibrate_batch_norms(student: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Set every BN's running statistics to their average over ``batches`` (images in [0, 1])."""
    norms = batch_norms(student)
    saved = [(m.momentum, m.training) for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
        norm.train()
    for images in batches:
        student(images)
    for norm, (momentum, training) in zip(norms, saved, strict=True):
        norm.momentum = momentum
        norm.train(training)


# ------------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """The shared device resolver, its errors as :class:`TrainingConfigError`."""
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


# ------------------------------------------------------------------------------------------------
# The step
# ------------------------------------------------------------------------------------------------
def classify(classifier: nn.Module, images: torch.Tensor, amp: bool) -> torch.Tensor:
    """Downstream logits (float32), under bf16 autocast when ``amp``."""
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
        return classifier(images).float()


def clamp_norms(grads: Sequence[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Each gradient rescaled to norm <= ``max_norm`` on its own (left as is when already within)."""
    norms = torch._foreach_norm(list(grads))
    scales = [max_norm / norm.clamp_min(max_norm) for norm in norms]
    return torch._foreach_mul(list(grads), scales)


def train_step(models: Models, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
               *, amp: bool, grad_clip: float) -> torch.Tensor:
    """One optimisation step of Algorithm 1; returns the detached ``[loss1, loss2]``."""
    params = models.trainable
    masks = models.grad_masks or [None] * len(params)

    def gradients(loss: torch.Tensor) -> list[torch.Tensor]:
        grads = torch.autograd.grad(loss, params)
        grads = [g if m is None else g * m for g, m in zip(grads, masks, strict=True)]
        return clamp_norms(grads, grad_clip)

    loss1 = F.cross_entropy(classify(models.classifier, models.student(images), amp), labels)
    grads1 = gradients(loss1)
    with torch.no_grad():
        teacher_view = models.ema(images)
    loss2 = F.cross_entropy(classify(models.classifier, models.student(teacher_view), amp), labels)
    grads2 = gradients(0.5 * loss2)
    for param, grad in zip(params, torch._foreach_add(grads1, grads2), strict=True):
        param.grad = grad
    optimizer.step()
    return torch.stack([loss1.detach(), loss2.detach()])


@torch.no_grad()
def ema_update(ema: nn.Module, student: nn.Module, rate: float) -> None:
    """``ema <- rate * ema + (1 - rate) * student`` for every floating entry of the state dict; others copied."""
    target, source = ema.state_dict(), student.state_dict()
    floats = [k for k, v in target.items() if v.is_floating_point()]
    torch._foreach_lerp_([target[k] for k in floats], [source[k] for k in floats], 1.0 - rate)
    for key in target.keys() - set(floats):
        target[key].copy_(source[key])


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------
def _as_input(batch: torch.Tensor, channels_last: bool) -> torch.Tensor:
    images = batch.float().div_(255.0)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


@torch.no_grad()
def evaluate(models: Models, held_out: HeldOutSet, *, batch_size: int, amp: bool,
             channels_last: bool = False) -> dict[str, float]:
    """Held-out top-1 (%) of the downstream model on clean, corrupted and enhanced (student, EMA) images.

    ``enhanced_clean`` is the EMA enhancer on the clean images (what SyMPIE costs where nothing is wrong).
    """
    modes = {name: m.training for name, m in models.student.named_modules()}
    models.student.eval()
    hits: dict[str, torch.Tensor] = {}

    def count(name: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        correct = (classify(models.classifier, images, amp).argmax(dim=1) == labels).sum()
        hits[name] = hits.get(name, 0) + correct

    for start in range(0, len(held_out), batch_size):
        part = slice(start, start + batch_size)
        clean = _as_input(held_out.clean[part], channels_last)
        corrupted = _as_input(held_out.corrupted[part], channels_last)
        labels = held_out.labels[part]
        count("clean", clean, labels)
        count("corrupted", corrupted, labels)
        count("enhanced", models.student(corrupted), labels)
        count("enhanced_ema", models.ema(corrupted), labels)
        count("enhanced_clean", models.ema(clean), labels)
    for name, module in models.student.named_modules():
        module.training = modes[name]
    return {name: 100.0 * float(n) / len(held_out) for name, n in hits.items()}


# ------------------------------------------------------------------------------------------------
# Files: checkpoint, log, weights
# ------------------------------------------------------------------------------------------------
def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
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
            "rng": _rng_states(),
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


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------
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
        "recipe": {k: info[k] for k in ("head_lr", "bias_lr", "freeze_backbone", "bn_mode", "clamp_in_training",
                                        "warmup", "warp_parts", "warp_basis", "basis_kappa", "grad_clip",
                                        "init_weights")},
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
        _set_rng_states(state["rng"])
        self.step = int(state["step"])

    def calibrate(self) -> None:
        """BN running statistics from the first training batches (``bn_mode="calibrated"``, fresh runs only)."""
        count = self.config.bn_calibration_batches
        loader = training_loader(self.dataset, batch_size=self.config.batch_size, start_step=0, stop_step=count,
                                 workers=self.config.workers, pin_memory=False)
        batches = (_as_input(images.to(self.device), self.config.channels_last) for images, _ in loader)
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
        images = _as_input(images.to(self.device, non_blocking=True), self.config.channels_last)
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


def lr_schedule(optimizer: torch.optim.Optimizer, *, iterations: int,
                warmup: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine decay over ``iterations`` (as released), after ``warmup`` steps of linear warm-up when given."""
    if warmup == 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations)
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), total_iters=warmup)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations - warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, decay], milestones=[warmup])


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
