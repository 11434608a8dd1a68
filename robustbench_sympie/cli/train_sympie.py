"""``train_sympie``: train a SyMPIE enhancer for a frozen downstream classifier on a clean image folder.

Example (one GPU)::

    train_sympie --data-root ~/imagenet-sample --out runs/lite0 --iterations 3000 --batch-size 48 --workers 14

Writes ``OUT/log.jsonl`` (losses, held-out top-1), ``OUT/config.json``, ``OUT/last.pt`` (the checkpoint
``--resume`` continues from) and, at the end, ``OUT/sympie.safetensors`` and ``OUT/sympie_ema.safetensors``
(NEM weights with a ``.json`` sidecar), loadable with ``--enhancer-weights`` or ``Sympie(weights=PATH)``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .quiet_pipe import quiet_broken_pipe

PROG = "train_sympie"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _severities(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (no heavy imports: ``--help`` is instant)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train SyMPIE (Algorithm 1 of Barbato et al., MMSys 2024) for a frozen downstream classifier: "
        "clean images are randomly cropped and corrupted on the fly (one corruption of the pool per image, "
        "severity uniform in 0..5), the enhancer is trained with the two-pass EMA-teacher loss.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                   help="segmentation: --model is a frozen Cityscapes segmenter (NAME:weights=PATH), --data-root the "
                   "Cityscapes root (train split trained on, val split held out; --val-root unused), held-out "
                   "scores are mIoU")
    data = p.add_argument_group("data")
    data.add_argument("--data-root", type=Path, required=True,
                      help="clean ImageNet-style training folder ('<wnid>_name.JPEG' files or '<wnid>/' subfolders)")
    data.add_argument("--val-root", type=Path, default=None,
                      help="held-out folder (its images are never trained on); default: every --val-every-nth "
                      "image of --data-root")
    data.add_argument("--val-every-nth", type=_positive_int, default=20,
                      help="without --val-root, hold out every Nth training image")
    data.add_argument("--val-limit", type=_positive_int, default=1000,
                      help="evaluate on at most this many held-out images (evenly spaced)")
    data.add_argument("--corruptions", default="sympie_training",
                      help="training corruption pool: names and groups, comma-separated (e.g. 'colour_warp,noise')")
    data.add_argument("--val-corruptions", default=None,
                      help="pool of the held-out images' fixed corruptions (default: --corruptions)")
    data.add_argument("--severities", type=_severities, default=[0, 1, 2, 3, 4, 5],
                      help="training severities drawn uniformly (0 = clean)")
    data.add_argument("--val-severities", type=_severities, default=[1, 2, 3, 4, 5],
                      help="severities of the held-out corruptions")
    data.add_argument("--image-size", type=_positive_int, default=224, help="crop size (square) fed to the models")
    data.add_argument("--resize", type=_positive_int, default=None,
                      help="shorter side before cropping (default: image-size * 256 / 224)")
    data.add_argument("--workers", type=_non_negative_int, default=None,
                      help="DataLoader worker processes (default: all cores but two, at most 16; 0 = in-process)")

    train = p.add_argument_group("training")
    train.add_argument("--model", default="efficientnet_lite0", help="frozen downstream classifier (registry name)")
    train.add_argument("--out", type=Path, required=True, help="output folder (log, checkpoint, weights)")
    train.add_argument("--iterations", type=_positive_int, default=2000,
                       help="optimisation steps (the cosine schedule spans them; paper: 50000)")
    train.add_argument("--batch-size", type=_positive_int, default=48, help="images per step (paper: 48 per GPU x 8)")
    train.add_argument("--lr", type=float, default=1e-3,
                       help="Adam learning rate (paper: 1e-3; with efficientnet_lite0 that collapsed the enhancer "
                       "within a few dozen steps in our checks, 1e-4 did not)")
    train.add_argument("--bias-lr", type=float, default=None,
                       help="learning rate of the NEM output bias, the image-independent part of the warp "
                       "(default: --lr); a larger one (e.g. 1e-2) learns global corrections in short runs")
    train.add_argument("--head-lr", type=float, default=None,
                       help="learning rate of the NEM output weight, the image-dependent part of the warp "
                       "(default: --lr); Adam moves each of its 512 x 37 entries by about this much per step")
    train.add_argument("--freeze-backbone", action=argparse.BooleanOptionalAction, default=False,
                       help="train the NEM's output layer only (its convolutions keep their initial values)")
    train.add_argument("--bn-mode", choices=("batch", "calibrated"), default="batch",
                       help="batch: BN on batch statistics while training (released); calibrated: running "
                       "statistics estimated on the first training batches, then frozen (train = inference)")
    train.add_argument("--bn-calibration-batches", type=_positive_int, default=8,
                       help="training batches that set the BN statistics with --bn-mode calibrated")
    train.add_argument("--clamp-in-training", action=argparse.BooleanOptionalAction, default=False,
                       help="clamp the warped image to the image range in training too (released: inference only)")
    train.add_argument("--warmup", type=_non_negative_int, default=0,
                       help="steps of linear learning-rate warm-up before the cosine decay")
    train.add_argument("--warp-parts", choices=("all", "colour"), default="all",
                       help="which warp parameters train: all (released) or colour (matrix and shift; the 5x5 "
                       "kernel stays the identity)")
    train.add_argument("--warp-basis", choices=("released", "preconditioned"), default="released",
                       help="coordinates Adam trains the NEM output layer in: released (the 37 warp parameters) or "
                       "preconditioned (luminance moves at full scale, colour balance and kernel scaled by "
                       "--basis-kappa; saved weights are folded back into the released layout)")
    train.add_argument("--basis-kappa", type=float, default=0.1,
                       help="scale of the colour-balance, off-diagonal and kernel directions with --warp-basis "
                       "preconditioned")
    train.add_argument("--ema-rate", type=float, default=0.9, help="EMA teacher rate, updated every step")
    train.add_argument("--grad-clip", type=float, default=1.0,
                       help="per-parameter gradient norm limit (applied to each of the two passes)")
    train.add_argument("--init-weights", default=None,
                       help="start from these NEM weights (file or entry name) instead of the identity")
    train.add_argument("--seed", type=int, default=0, help="run seed (data stream, held-out corruptions, init)")
    train.add_argument("--stop-after", type=_positive_int, default=None,
                       help="stop after this many steps (checkpointed; continue with --resume)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (same settings required)")

    run = p.add_argument_group("device and output")
    run.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    run.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                     help="bf16 autocast of the downstream model's forward (CUDA only)")
    run.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                     help="channels-last memory format (can be faster on GPUs)")
    run.add_argument("--checkpoint-every", type=_non_negative_int, default=500,
                     help="write OUT/last.pt every N steps (0: only at the end)")
    run.add_argument("--eval-every", type=_non_negative_int, default=250,
                     help="held-out top-1 every N steps, at step 0 and at the end (0: never)")
    run.add_argument("--log-every", type=_positive_int, default=10, help="log the mean losses every N steps")
    run.add_argument("--fp16-weights", action="store_true", help="store the final NEM weights in float16")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="tqdm progress bar")
    return p


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` of parsed arguments."""
    from ..training.loop import TrainConfig, default_workers

    return TrainConfig(
        out=args.out,
        data_root=args.data_root,
        val_root=args.val_root,
        model=args.model,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        bias_lr=args.bias_lr,
        head_lr=args.head_lr,
        freeze_backbone=args.freeze_backbone,
        bn_mode=args.bn_mode,
        bn_calibration_batches=args.bn_calibration_batches,
        clamp_in_training=args.clamp_in_training,
        warmup=args.warmup,
        warp_parts=args.warp_parts,
        warp_basis=args.warp_basis,
        basis_kappa=args.basis_kappa,
        ema_rate=args.ema_rate,
        grad_clip=args.grad_clip,
        workers=default_workers() if args.workers is None else args.workers,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        log_every=args.log_every,
        resume=args.resume,
        stop_after=args.stop_after,
        seed=args.seed,
        corruptions=args.corruptions,
        severities=tuple(args.severities),
        val_corruptions=args.val_corruptions,
        val_severities=tuple(args.val_severities),
        val_limit=args.val_limit,
        val_every_nth=args.val_every_nth,
        resize=args.resize or round(args.image_size * 256 / 224),
        crop=args.image_size,
        init_weights=args.init_weights,
        fp16_weights=args.fp16_weights,
        progress=args.progress,
    )


def _error(message: str) -> int:
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    print(f"{PROG}: error: {lines[-1] if lines else message}", file=sys.stderr)
    return 2


@quiet_broken_pipe
def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, train, print where the results are; exit status 2 for unusable input."""
    args = build_parser().parse_args(argv)
    from ..errors import SuiteError
    from ..registry import RegistryError, UnknownNameError
    from ..training.loop import train

    score = "top-1"
    try:
        config = config_from_args(args)
        if args.task == "segmentation":
            from ..training.segmentation import train_segmentation

            result, score = train_segmentation(config), "mIoU"
        else:
            result = train(config)
    except (SuiteError, UnknownNameError, RegistryError, ValueError) as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; resume from the last checkpoint with --resume", file=sys.stderr)
        return 130
    last = result.evaluations[-1] if result.evaluations else {}
    summary = ", ".join(f"{k} {v:.1f}" for k, v in last.items() if k not in ("kind", "step"))
    print(f"step {result.step}/{config.iterations}; held-out {score}: {summary or 'not evaluated'}")
    if result.finished:
        print(f"weights: {result.student_weights} (student), {result.ema_weights} (EMA)")
    else:
        print(f"stopped early; checkpoint {result.checkpoint} (continue with --resume)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
