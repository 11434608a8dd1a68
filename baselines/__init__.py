"""Enhancer baselines for robustbench-sympie, registered only through the public entry-point interface.

Classical denoisers live in :mod:`baselines.classical`, training-free colour/contrast enhancers in
:mod:`baselines.parametric`. Each class is listed under ``[project.entry-points."robustbench_sympie.enhancers"]``
in the project's ``pyproject.toml``; nothing in ``robustbench_sympie`` imports this package.
"""

from __future__ import annotations

__all__: list[str] = []
