"""The preconditioned training basis of the NEM's output layer folds back into the released layout exactly."""

from __future__ import annotations

import pytest
import torch

from robustbench_sympie.enhancers.sympie import Sympie
from robustbench_sympie.training.warp_basis import (
    PreconditionedOutput,
    fold_output_layers,
    use_warp_basis,
    warp_basis,
)


def test_basis_is_invertible_and_block_diagonal() -> None:
    basis = warp_basis(0.1).double()
    assert torch.linalg.matrix_rank(basis) == 37
    assert torch.count_nonzero(basis[:12, 12:]) == 0 and torch.count_nonzero(basis[12:, :12]) == 0
    assert torch.allclose(basis[12:, 12:], 0.1 * torch.eye(25, dtype=torch.float64), atol=1e-7)
    with pytest.raises(ValueError, match="kappa"):
        warp_basis(0.0)


def test_fresh_preconditioned_layer_changes_nothing() -> None:
    torch.manual_seed(0)
    images = torch.rand(2, 3, 48, 64)
    plain = Sympie(weights=None)
    wrapped = Sympie(weights=None)
    use_warp_basis(wrapped.nem, 0.1)
    assert isinstance(wrapped.nem.out, PreconditionedOutput)
    assert torch.equal(wrapped(images), plain(images)) and torch.equal(wrapped(images), images)


def test_folding_gives_the_same_enhancer_in_the_released_layout() -> None:
    torch.manual_seed(1)
    enhancer = Sympie(weights=None)
    use_warp_basis(enhancer.nem, 0.1)
    with torch.no_grad():
        enhancer.nem.out.weight.normal_(0, 1e-3)
        enhancer.nem.out.bias.normal_(0, 0.05)
    folded = fold_output_layers(enhancer)
    assert isinstance(folded.nem.out, torch.nn.Linear) and isinstance(enhancer.nem.out, PreconditionedOutput)
    assert set(folded.nem.state_dict()) == set(Sympie(weights=None).nem.state_dict())
    images = torch.rand(3, 3, 64, 64)
    assert torch.allclose(folded(images), enhancer(images), atol=1e-5)


def test_first_direction_is_a_gain_about_black() -> None:
    """To first order the luminance column scales pixels about 0 (what undoes darkening and low contrast)."""
    enhancer = Sympie(weights=None)
    use_warp_basis(enhancer.nem, 0.1)
    step = 1e-3
    with torch.no_grad():
        enhancer.nem.out.bias[0] = step
    images = torch.rand(2, 3, 32, 48) * 0.9  # no clamping at the top
    assert torch.allclose(enhancer(images), (1 + step) * images, atol=2e-6)
