"""``train_sympie``: train a SyMPIE enhancer for a frozen downstream classifier on a clean image folder.

Example (one GPU)::

    train_sympie --data-root ~/imagenet-sample --out runs/lite0 --iterations 3000 --batch-size 48 --workers 14

Writes ``OUT/log.jsonl`` (losses, held-out top-1), ``OUT/config.json``, ``OUT/last.pt`` (the checkpoint
``--resume`` continues from) and, at the end, ``OUT/sympie.safetensors`` and ``OUT/sympie_ema.safetensors``
(NEM weights with a ``.json`` sidecar), loadable with ``--enhancer-weights`` or ``Sympie(weights=PATH)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..training.config import CLI_GROUPS, TrainConfig
from . import DefaultsHelpFormatter
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


#: argparse settings of each value kind of :func:`robustbench_sympie.training.config.cli`
_KINDS: dict[str, dict[str, Any]] = {
    "str": {},
    "path": {"type": Path},
    "int": {"type": int},
    "float": {"type": float},
    "positive_int": {"type": _positive_int},
    "non_negative_int": {"type": _non_negative_int},
    "int_list": {"type": _severities},
    "switch": {"action": argparse.BooleanOptionalAction},
    "store_true": {"action": "store_true"},
}
#: flags that set no :class:`TrainConfig` field (``-h/--help`` aside): none today
#: flags that choose what to run rather than configure it (not TrainConfig fields)
CLI_ONLY_FLAGS: tuple[str, ...] = ("--task",)


def flag_of(spec: dataclasses.Field) -> str:
    """The flag of a :class:`TrainConfig` field (``--`` + its name with dashes unless its metadata says)."""
    return spec.metadata.get("flag") or "--" + spec.name.replace("_", "-")


def _dest(spec: dataclasses.Field) -> str:
    return flag_of(spec).lstrip("-").replace("-", "_")


def _parser_default(spec: dataclasses.Field) -> Any:
    """The parser's default of a field: its ``cli_default`` metadata, else the field's default."""
    if "cli_default" in spec.metadata:
        return spec.metadata["cli_default"]
    if spec.default is not dataclasses.MISSING:
        default = spec.default
    elif spec.default_factory is not dataclasses.MISSING:
        default = spec.default_factory()
    else:
        return None
    return list(default) if spec.metadata["kind"] == "int_list" else default


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one flag per :class:`TrainConfig` field (its metadata gives the help, group, value
    kind and choices); no heavy imports: ``--help`` is instant."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train SyMPIE (Algorithm 1 of Barbato et al., MMSys 2024) for a frozen downstream classifier: "
        "clean images are randomly cropped and corrupted on the fly (one corruption of the pool per image, "
        "severity uniform in 0..5), the enhancer is trained with the two-pass EMA-teacher loss.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                   help="segmentation: --model is a frozen Cityscapes segmenter (NAME:weights=PATH), --data-root the "
                   "Cityscapes root (train split trained on, val split held out; --val-root unused), held-out "
                   "scores are mIoU")
    groups = {name: p.add_argument_group(name) for name in CLI_GROUPS}
    for spec in dataclasses.fields(TrainConfig):
        meta = spec.metadata
        options: dict[str, Any] = {**_KINDS[meta["kind"]], "default": _parser_default(spec), "help": meta["help"]}
        if meta["choices"] is not None:
            options["choices"] = tuple(meta["choices"])
        if meta["required"]:
            options["required"] = True
        groups[meta["group"]].add_argument(flag_of(spec), **options)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed arguments: each field from its flag; a flag whose parser default is
    ``None`` and that was not given leaves the field's default (or its derived value, see ``cli``)."""
    values: dict[str, Any] = {}
    unset: list[dataclasses.Field] = []
    for spec in dataclasses.fields(TrainConfig):
        value = getattr(args, _dest(spec))
        if value is None and spec.metadata.get("cli_default", 0) is None:
            unset.append(spec)
            continue
        values[spec.name] = tuple(value) if spec.metadata["kind"] == "int_list" else value
    for spec in unset:
        derive = spec.metadata.get("derive")
        if derive is not None:
            values[spec.name] = derive(values)
    return TrainConfig(**values)


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
    from ..training.trainer import train

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
