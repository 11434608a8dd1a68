"""Registries: decorator registration, did-you-mean errors, top-level API and entry-point plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import robustbench_sympie as rbs
from robustbench_sympie.registry import Registry, UnknownNameError


def test_register_create_list_and_duplicates():
    reg = Registry("widget", entry_point_group="robustbench_sympie.test-nothing")

    @reg.register("square")
    def square(x=2):
        return x * x

    assert reg.names() == ["square"]
    assert reg.create("square", x=3) == 9
    with pytest.raises(ValueError, match="already registered"):
        reg.add("square", lambda: 0)
    reg.add("square", lambda: 0, overwrite=True)
    assert reg.create("square") == 0


def test_unknown_name_lists_known_names_and_closest_match():
    with pytest.raises(UnknownNameError) as info:
        rbs.create_enhancer("identiti")
    message = str(info.value)
    assert "Did you mean 'identity'?" in message
    assert "identity" in message and "sympie" in message
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet50'"):
        rbs.create_model("resnet5O")


def test_top_level_api():
    assert "identity" in rbs.list_enhancers()
    assert {"resnet50", "vit_b_16", "efficientnet_lite0"} <= set(rbs.list_models())
    assert "imagenet-c" in rbs.list_datasets()
    assert {"gaussian_noise", "saturate"} <= set(rbs.list_corruptions())
    enhancer = rbs.create_enhancer("identity")
    assert isinstance(enhancer, rbs.Enhancer) and enhancer.name == "identity" and not enhancer.requires_weights


PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "rbs-tiny-plugin"
version = "0.0.1"

[project.entry-points."robustbench_sympie.enhancers"]
tiny_invert = "rbs_tiny_plugin:TinyInvert"

[project.entry-points."robustbench_sympie.models"]
tiny_plugin_model = "rbs_tiny_plugin:tiny_model"

[project.entry-points."robustbench_sympie.datasets"]
tiny-plugin-set = "rbs_tiny_plugin:tiny_dataset"
"""

PLUGIN_MODULE = """
from robustbench_sympie import Enhancer

class TinyInvert(Enhancer):
    name = "tiny_invert"
    def forward(self, images):
        return 1.0 - images

def tiny_model(weights=None):
    raise NotImplementedError

def tiny_dataset(**kwargs):
    raise NotImplementedError
"""


def test_entry_point_plugin_is_listed_without_editing_the_package(tmp_path: Path):
    src = tmp_path / "src"
    (src / "rbs_tiny_plugin").mkdir(parents=True)
    (src / "pyproject.toml").write_text(textwrap.dedent(PLUGIN_PYPROJECT))
    (src / "rbs_tiny_plugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(src)],
        check=True, capture_output=True, text=True,
    )
    code = textwrap.dedent("""
        import torch
        from robustbench_sympie import create_enhancer, list_datasets, list_enhancers, list_models
        print(sorted(list_enhancers()), "tiny_plugin_model" in list_models(), "tiny-plugin-set" in list_datasets())
        out = create_enhancer("tiny_invert")(torch.zeros(1, 3, 4, 4))
        print(float(out.min()))
    """)
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    first, second = result.stdout.strip().splitlines()
    assert "'tiny_invert'" in first and first.endswith("True True")
    assert second == "1.0"
