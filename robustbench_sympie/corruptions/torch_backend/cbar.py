"""Batched torch versions of the ImageNet-C-Bar corruptions (``robustbench_sympie.data.imagenet_c_bar_corruptions``)."""

from __future__ import annotations
