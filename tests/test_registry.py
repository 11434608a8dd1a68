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


class _EntryPoint:
    """A stand-in for importlib.metadata.EntryPoint (name, value, load)."""

    def __init__(self, name: str, value: str, target) -> None:
        self.name, self.value, self._target = name, value, target

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def test_broken_plugin_is_reported_by_name_and_others_stay(monkeypatch):
    from robustbench_sympie import registry as registry_module
    from robustbench_sympie.registry import RegistryError

    points = [_EntryPoint("good_a", "pkg:A", lambda: "a"), _EntryPoint("bad", "pkg.broken:B", ImportError("no numpy")),
              _EntryPoint("good_b", "pkg:B", lambda: "b")]
    monkeypatch.setattr(registry_module.metadata, "entry_points", lambda group: points)
    reg = Registry("widget", entry_point_group="robustbench_sympie.test-broken")
    with pytest.warns(RuntimeWarning, match="'bad'.*pkg.broken:B.*no numpy"):
        assert reg.names() == ["good_a", "good_b"]
    for _ in range(2):  # every lookup of the broken one fails with the cause; the others keep working
        with pytest.raises(RegistryError, match="widget 'bad' is unavailable.*ImportError: no numpy"):
            reg.get("bad")
        assert reg.create("good_b") == "b"
    assert "bad" in reg.broken


def test_broken_builtin_module_fails_every_lookup():
    reg = Registry("widget", entry_point_group="robustbench_sympie.test-nothing",
                   builtin_modules=("robustbench_sympie._no_such_module",))
    for _ in range(2):
        with pytest.raises(ModuleNotFoundError):
            reg.names()


def test_no_import_cycles_inside_the_package():
    """Module-level and function-level imports between the package's modules form no cycle."""
    import ast

    root = Path(rbs.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = (path, is_package)

    def resolve(current: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
        if node.level:
            base = current.split(".") if is_package else current.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        found = []
        for alias in node.names:  # "from pkg import module" imports a module too
            if f"{target}.{alias.name}" in modules:
                found.append(f"{target}.{alias.name}")
        if target in modules:
            found.append(target)
        return found

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                graph[name].update(resolve(name, is_package, node))
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules)
    for name in modules:  # importing a submodule imports its parent packages first; that is no edge of ours
        graph[name].discard(name)

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
