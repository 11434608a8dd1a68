"""The settings of a SyMPIE training run: :class:`TrainConfig`, its validation and its command line.

Each field of :class:`TrainConfig` carries its ``train_sympie`` flag in ``dataclasses.field(metadata=...)``
(see :func:`cli`): help text, flag group, value kind, choices; :mod:`robustbench_sympie.cli.train_sympie`
builds its parser and the config of the parsed arguments from these alone. This module imports neither torch
nor the models (``train_sympie --help`` stays instant).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SuiteError

#: severities drawn for training samples (0 = clean), uniformly, as released
TRAIN_SEVERITIES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
#: severities of the held-out corruptions
HELD_OUT_SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
#: how the NEM's batch norms behave while training
BN_MODES: tuple[str, ...] = ("batch", "calibrated")
#: which outputs of the NEM training may move: ``all`` (released) or ``colour`` (matrix and shift only; the
#: 5 x 5 kernel stays the identity)
WARP_PARTS: tuple[str, ...] = ("all", "colour")
#: coordinates Adam trains the NEM's output layer in (see :mod:`.warp_basis`)
WARP_BASES: tuple[str, ...] = ("released", "preconditioned")
#: settings a resumed run must share with the checkpoint for the continuation to be exact (keys of the run
#: info: config fields, plus ``train_ids_sha256``, the fingerprint of the training images)
RESUME_KEYS: tuple[str, ...] = (
    "model", "iterations", "batch_size", "lr", "ema_rate", "seed", "corruptions", "severities",
    "resize", "crop", "grad_clip", "train_ids_sha256", "head_lr", "bias_lr", "freeze_backbone", "bn_mode",
    "bn_calibration_batches", "clamp_in_training", "warmup", "warp_parts", "warp_basis", "basis_kappa",
)
#: config fields the saved weights' metadata records as the training recipe (in this order)
RECIPE_KEYS: tuple[str, ...] = (
    "head_lr", "bias_lr", "freeze_backbone", "bn_mode", "clamp_in_training", "warmup", "warp_parts", "warp_basis",
    "basis_kappa", "grad_clip", "init_weights",
)

#: the flag groups of ``train_sympie --help``, in their order
CLI_GROUPS: tuple[str, ...] = ("data", "training", "device and output")
DATA, TRAINING, OUTPUT = CLI_GROUPS
#: what a flag's value is: ``str``, ``path``, ``int``, ``float``, ``positive_int``, ``non_negative_int``,
#: ``int_list`` (comma-separated, stored as a tuple), ``switch`` (``--x/--no-x``) or ``store_true`` (``--x``)
CLI_KINDS: tuple[str, ...] = ("str", "path", "int", "float", "positive_int", "non_negative_int", "int_list",
                              "switch", "store_true")
_UNSET: Any = object()


def cli(help: str, group: str, *, kind: str = "str", flag: str | None = None, choices: Sequence[str] | None = None,
        required: bool = False, default: Any = _UNSET,
        derive: Callable[[Mapping[str, Any]], Any] | None = None) -> dict[str, Any]:
    """The ``metadata`` of a :class:`TrainConfig` field: its ``train_sympie`` flag.

    ``flag`` defaults to ``--`` + the field name with dashes; ``default`` is the parser's default when it is
    not the field's. A parser default of ``None`` that the user left alone stands for the field's default,
    or for ``derive(values)`` when given (``values``: the other fields, as parsed).
    """
    if group not in CLI_GROUPS or kind not in CLI_KINDS:
        raise ValueError(f"unknown flag group {group!r} or kind {kind!r}")
    meta: dict[str, Any] = {"help": help, "group": group, "kind": kind, "flag": flag, "choices": choices,
                            "required": required}
    if default is not _UNSET:
        meta["cli_default"] = default
    if derive is not None:
        meta["derive"] = derive
    return meta


class TrainingConfigError(SuiteError, ValueError):
    """Settings the training run cannot use (the message says which and why)."""


def default_workers() -> int:
    """DataLoader workers: all cores but two (the training process and the pinning thread), at most 16."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(0, min(16, cores - 2))


def _default_resize(values: Mapping[str, Any]) -> int:
    return round(values["crop"] * 256 / 224)


@dataclass
class TrainConfig:
    """Every setting of a training run; ``train_sympie``'s flags are generated from these fields (their
    ``metadata``, see :func:`cli`)."""

    out: Path = field(metadata=cli("output folder (log, checkpoint, weights)", TRAINING, kind="path", required=True))
    data_root: Path | None = field(default=None, metadata=cli(
        "clean ImageNet-style training folder ('<wnid>_name.JPEG' files or '<wnid>/' subfolders)", DATA,
        kind="path", required=True))
    val_root: Path | None = field(default=None, metadata=cli(
        "held-out folder (its images are never trained on); default: every --val-every-nth image of --data-root",
        DATA, kind="path"))
    model: str = field(default="efficientnet_lite0", metadata=cli(
        "frozen downstream classifier (registry name)", TRAINING))
    iterations: int = field(default=2000, metadata=cli(
        "optimisation steps (the cosine schedule spans them; paper: 50000)", TRAINING, kind="positive_int"))
    batch_size: int = field(default=48, metadata=cli(
        "images per step (paper: 48 per GPU x 8)", TRAINING, kind="positive_int"))
    lr: float = field(default=1e-3, metadata=cli(
        "Adam learning rate (paper: 1e-3; with efficientnet_lite0 that collapsed the enhancer within a few dozen "
        "steps in our checks, 1e-4 did not)", TRAINING, kind="float"))
    #: learning rate of the NEM's output weight (the image-dependent part of the warp); None: ``lr``
    head_lr: float | None = field(default=None, metadata=cli(
        "learning rate of the NEM output weight, the image-dependent part of the warp (default: --lr); Adam moves "
        "each of its 512 x 37 entries by about this much per step", TRAINING, kind="float"))
    #: learning rate of the NEM's output bias (the image-independent part of the warp); None: ``lr``
    bias_lr: float | None = field(default=None, metadata=cli(
        "learning rate of the NEM output bias, the image-independent part of the warp (default: --lr); a larger "
        "one (e.g. 1e-2) learns global corrections in short runs", TRAINING, kind="float"))
    #: train only the NEM's output layer (its convolutions keep their initial or ``init_weights`` values)
    freeze_backbone: bool = field(default=False, metadata=cli(
        "train the NEM's output layer only (its convolutions keep their initial values)", TRAINING, kind="switch"))
    #: ``batch``: BN on batch statistics while training (released); ``calibrated``: running statistics
    #: estimated on ``bn_calibration_batches`` training batches before the first step, then BN runs in eval
    #: mode throughout, so training and inference compute the same function
    bn_mode: str = field(default="batch", metadata=cli(
        "batch: BN on batch statistics while training (released); calibrated: running statistics estimated on "
        "the first training batches, then frozen (train = inference)", TRAINING, choices=BN_MODES))
    bn_calibration_batches: int = field(default=8, metadata=cli(
        "training batches that set the BN statistics with --bn-mode calibrated", TRAINING, kind="positive_int"))
    #: clamp the warped image to the image range while training too (the released loop clamps at inference only)
    clamp_in_training: bool = field(default=False, metadata=cli(
        "clamp the warped image to the image range in training too (released: inference only)", TRAINING,
        kind="switch"))
    #: steps of linear learning-rate warm-up before the cosine decay
    warmup: int = field(default=0, metadata=cli(
        "steps of linear learning-rate warm-up before the cosine decay", TRAINING, kind="non_negative_int"))
    #: ``all`` (released) or ``colour``: only the colour matrix and shift are trained, the kernel stays a delta
    warp_parts: str = field(default="all", metadata=cli(
        "which warp parameters train: all (released) or colour (matrix and shift; the 5x5 kernel stays the "
        "identity)", TRAINING, choices=WARP_PARTS))
    #: ``released`` (Adam on the 37 parameters as released) or ``preconditioned`` (Adam on luminance moves at
    #: full scale and on colour-balance, off-diagonal and kernel moves scaled by ``basis_kappa``; the saved
    #: weights are folded back into the released layout)
    warp_basis: str = field(default="released", metadata=cli(
        "coordinates Adam trains the NEM output layer in: released (the 37 warp parameters) or preconditioned "
        "(luminance moves at full scale, colour balance and kernel scaled by --basis-kappa; saved weights are "
        "folded back into the released layout)", TRAINING, choices=WARP_BASES))
    basis_kappa: float = field(default=0.1, metadata=cli(
        "scale of the colour-balance, off-diagonal and kernel directions with --warp-basis preconditioned",
        TRAINING, kind="float"))
    ema_rate: float = field(default=0.9, metadata=cli("EMA teacher rate, updated every step", TRAINING, kind="float"))
    grad_clip: float = field(default=1.0, metadata=cli(
        "per-parameter gradient norm limit (applied to each of the two passes)", TRAINING, kind="float"))
    workers: int = field(default_factory=default_workers, metadata=cli(
        "DataLoader worker processes (default: all cores but two, at most 16; 0 = in-process)", DATA,
        kind="non_negative_int", default=None))
    device: str = field(default="auto", metadata=cli(
        "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps", OUTPUT))
    amp: bool = field(default=True, metadata=cli(
        "bf16 autocast of the downstream model's forward (CUDA only)", OUTPUT, kind="switch"))
    channels_last: bool = field(default=False, metadata=cli(
        "channels-last memory format (can be faster on GPUs)", OUTPUT, kind="switch"))
    checkpoint_every: int = field(default=500, metadata=cli(
        "write OUT/last.pt every N steps (0: only at the end)", OUTPUT, kind="non_negative_int"))
    eval_every: int = field(default=250, metadata=cli(
        "held-out top-1 every N steps, at step 0 and at the end (0: never)", OUTPUT, kind="non_negative_int"))
    log_every: int = field(default=10, metadata=cli(
        "log the mean losses every N steps", OUTPUT, kind="positive_int"))
    resume: bool = field(default=False, metadata=cli(
        "continue from OUT/last.pt (same settings required)", TRAINING, kind="store_true"))
    stop_after: int | None = field(default=None, metadata=cli(
        "stop after this many steps (checkpointed; continue with --resume)", TRAINING, kind="positive_int"))
    seed: int = field(default=0, metadata=cli(
        "run seed (data stream, held-out corruptions, init)", TRAINING, kind="int"))
    corruptions: str | Sequence[str] = field(default="sympie_training", metadata=cli(
        "training corruption pool: names and groups, comma-separated (e.g. 'colour_warp,noise')", DATA))
    severities: Sequence[int] = field(default=TRAIN_SEVERITIES, metadata=cli(
        "training severities drawn uniformly (0 = clean)", DATA, kind="int_list"))
    val_corruptions: str | Sequence[str] | None = field(default=None, metadata=cli(
        "pool of the held-out images' fixed corruptions (default: --corruptions)", DATA))
    val_severities: Sequence[int] = field(default=HELD_OUT_SEVERITIES, metadata=cli(
        "severities of the held-out corruptions", DATA, kind="int_list"))
    val_limit: int | None = field(default=1000, metadata=cli(
        "evaluate on at most this many held-out images (evenly spaced)", DATA, kind="positive_int"))
    val_every_nth: int = field(default=20, metadata=cli(
        "without --val-root, hold out every Nth training image", DATA, kind="positive_int"))
    resize: int = field(default=256, metadata=cli(
        "shorter side before cropping (default: image-size * 256 / 224)", DATA, kind="positive_int", default=None,
        derive=_default_resize))
    crop: int = field(default=224, metadata=cli(
        "crop size (square) fed to the models", DATA, kind="positive_int", flag="--image-size"))
    init_weights: str | None = field(default=None, metadata=cli(
        "start from these NEM weights (file or entry name) instead of the identity", TRAINING))
    fp16_weights: bool = field(default=False, metadata=cli(
        "store the final NEM weights in float16", OUTPUT, kind="store_true"))
    progress: bool = field(default=True, metadata=cli("tqdm progress bar", OUTPUT, kind="switch"))

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
        if not (self.lr > 0 and self.grad_clip > 0):  # also refuses nan
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
        if any(v is not None and not v > 0 for v in (self.head_lr, self.bias_lr)):
            problems.append(f"head_lr and bias_lr must be positive, got {self.head_lr}, {self.bias_lr}")
        if self.crop < 43 or self.resize < self.crop:
            problems.append(f"need resize >= crop >= 43 (the NEM's smallest input), got {self.resize}/{self.crop}")
        if self.stop_after is not None and self.stop_after <= 0:
            problems.append(f"stop_after must be positive, got {self.stop_after}")
        if self.val_limit is not None and self.val_limit <= 0:
            problems.append(f"val_limit must be positive, got {self.val_limit}")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            problems.append(f"out {self.out} is a file, not a folder: give a new or existing folder")
        if problems:
            raise TrainingConfigError("; ".join(problems))
