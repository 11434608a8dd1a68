"""One step of SyMPIE training: Algorithm 1 of Barbato et al. (MMSys 2024) for one frozen downstream classifier.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


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


def as_input(batch: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A uint8 image batch as float images in [0, 1] (channels-last when asked)."""
    images = batch.float().div_(255.0)
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def lr_schedule(optimizer: torch.optim.Optimizer, *, iterations: int,
                warmup: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine decay over ``iterations`` (as released), after ``warmup`` steps of linear warm-up when given."""
    if warmup == 0:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations)
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), total_iters=warmup)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations - warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, decay], milestones=[warmup])
