"""Training the NEM's output layer in a preconditioned basis of the warp parameters.

The NEM's last layer predicts the 37 warp parameters (3 x 3 colour matrix ``M``, shift ``s``, 5 x 5 kernel
``K``) directly, and the DWM applies ``M (x + s)`` in ImageNet-normalised space. Two facts make that
parameterisation hard for Adam, which moves every coordinate by about its learning rate per step:

* undoing a loss of light or contrast is a **gain about pixel 0** (``p -> g p``); in these coordinates that is
  ``M = g I`` together with ``s = (1 - 1/g) mean / std``, a coupled move of four coordinates. A move of the
  diagonal of ``M`` alone is a gain about the ImageNet mean, which first makes dark images darker still;
* downstream classifiers can be very sensitive to **colour-balance** changes: with efficientnet_lite0 on
  darkened 128 px images, a 1 % gain on the red channel alone raised the cross-entropy about 30 times more
  than a global one-level brightness change (+0.070 vs +0.002 nats). Per-coordinate steps on single
  channels, off-diagonal entries and kernel taps therefore raise the loss unless they are tiny.

:class:`PreconditionedOutput` replaces the output layer while training: ``y = W0 f + b0 + P (W' f + b')``
with ``W0, b0`` the layer's starting values (frozen), ``W', b'`` trained (zero at the start, so training
starts from exactly the same warp) and ``P`` a fixed, invertible 37 x 37 basis (:func:`warp_basis`) whose
first columns are the luminance moves (gain about pixel 0, brightness) at full scale, and whose colour-balance,
off-diagonal and kernel columns are scaled by ``kappa``. Adam in this basis takes full steps along the
luminance moves and ``kappa``-sized steps elsewhere. :meth:`PreconditionedOutput.folded` turns it back into a
plain ``Linear`` (``W = W0 + P W'``, ``b = b0 + P b'``), so the saved weights have the released layout and
inference is unchanged. The colour part is the first 12 columns, the kernel the last 25, as in the released
layout, so ``warp_parts="colour"`` masks the same rows in either basis.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..enhancers.sympie_arch import IMAGENET_MEAN, IMAGENET_STD, KERNEL_SIZE, NUM_WARP_PARAMS

__all__ = ["PreconditionedOutput", "fold_output_layers", "use_warp_basis", "warp_basis"]

_MATRIX = 0  # M[d, c] is entry 3 * d + c (input channel d, output channel c)
_SHIFT = 9
_KERNEL = 12


def warp_basis(kappa: float = 0.1) -> torch.Tensor:
    """The 37 x 37 basis ``P`` (columns = directions in the released parameter layout).

    Columns: 0 gain about pixel 0 (``M_cc += 1``, ``s_c += mean_c / std_c``); 1 brightness (``s_c += 0.25 /
    std_c``, a quarter of the [0, 1] range); 2-3 channel-gain imbalances about pixel 0 (red - blue, red + blue
    - 2 green), 4-5 channel-shift imbalances (colour casts), 6-11 the off-diagonal entries of ``M``, 12-36
    the kernel taps; all but the first two scaled by ``kappa``.
    """
    if not 0 < kappa <= 1:
        raise ValueError(f"kappa must be in (0, 1], got {kappa}")
    mean, std = torch.tensor(IMAGENET_MEAN, dtype=torch.float64), torch.tensor(IMAGENET_STD, dtype=torch.float64)
    basis = torch.zeros(NUM_WARP_PARAMS, NUM_WARP_PARAMS, dtype=torch.float64)
    diagonal = [_MATRIX + 4 * c for c in range(3)]
    shifts = [_SHIFT + c for c in range(3)]

    def gain_about_zero(weights: list[float]) -> torch.Tensor:
        column = torch.zeros(NUM_WARP_PARAMS, dtype=torch.float64)
        for c, w in enumerate(weights):
            column[diagonal[c]] = w
            column[shifts[c]] = w * mean[c] / std[c]
        return column

    def shift(weights: list[float]) -> torch.Tensor:
        column = torch.zeros(NUM_WARP_PARAMS, dtype=torch.float64)
        for c, w in enumerate(weights):
            column[shifts[c]] = 0.25 * w / std[c]
        return column

    basis[:, 0] = gain_about_zero([1.0, 1.0, 1.0])
    basis[:, 1] = shift([1.0, 1.0, 1.0])
    basis[:, 2] = kappa * gain_about_zero([1.0, 0.0, -1.0])
    basis[:, 3] = kappa * gain_about_zero([1.0, -2.0, 1.0])
    basis[:, 4] = kappa * shift([1.0, 0.0, -1.0])
    basis[:, 5] = kappa * shift([1.0, -2.0, 1.0])
    off_diagonal = [_MATRIX + 3 * d + c for d in range(3) for c in range(3) if d != c]
    for column, index in enumerate(off_diagonal, start=6):
        basis[index, column] = kappa
    taps = torch.arange(_KERNEL, _KERNEL + KERNEL_SIZE * KERNEL_SIZE)
    basis[taps, taps] = kappa
    return basis.float()


class PreconditionedOutput(nn.Module):
    """``y = W0 f + b0 + P (W' f + b')``: a ``Linear(512, 37)`` trained through the basis ``P``.

    ``weight``/``bias`` are ``W'``/``b'`` (so learning-rate groups and gradient masks that look for the output
    layer's ``weight`` and ``bias`` apply to them); ``W0``, ``b0`` and ``P`` are buffers.
    """

    def __init__(self, layer: nn.Linear, basis: torch.Tensor) -> None:
        super().__init__()
        if basis.shape != (layer.out_features, layer.out_features):
            raise ValueError(f"basis must be {layer.out_features} x {layer.out_features}, got {tuple(basis.shape)}")
        self.register_buffer("weight0", layer.weight.detach().clone())
        self.register_buffer("bias0", layer.bias.detach().clone())
        self.register_buffer("basis", basis.to(layer.weight))
        self.weight = nn.Parameter(torch.zeros_like(layer.weight))
        self.bias = nn.Parameter(torch.zeros_like(layer.bias))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight0, self.bias0) + F.linear(F.linear(features, self.weight, self.bias),
                                                                        self.basis)

    @torch.no_grad()
    def folded(self) -> nn.Linear:
        """The equivalent plain layer (released layout)."""
        layer = nn.Linear(self.weight.shape[1], self.weight.shape[0]).to(self.weight)
        layer.weight.copy_(self.weight0 + self.basis @ self.weight)
        layer.bias.copy_(self.bias0 + self.basis @ self.bias)
        return layer


def use_warp_basis(nem: nn.Module, kappa: float) -> None:
    """Replace ``nem.out`` by a :class:`PreconditionedOutput` around it (same outputs until trained)."""
    nem.out = PreconditionedOutput(nem.out, warp_basis(kappa))


def fold_output_layers(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (a Sympie or its NEM) whose preconditioned output layer is folded back."""
    import copy

    folded = copy.deepcopy(module)
    nem = getattr(folded, "nem", folded)
    if isinstance(nem.out, PreconditionedOutput):
        nem.out = nem.out.folded()
    return folded
