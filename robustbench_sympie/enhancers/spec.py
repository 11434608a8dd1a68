"""Per-enhancer arguments from the command line, in the style of lm-evaluation-harness's ``--model_args``.

``--enhancer "identity,sympie:weights=PATH,tv_denoise:weight=0.2"``: enhancers are separated by commas; each may
carry ``key=value`` arguments after a colon, several joined by further colons (``name:k1=v1:k2=v2``; a colon
that is not followed by ``key=`` belongs to the value, so ``weights=C:/w.pth`` works). Values are converted to the
type of the constructor parameter (its annotation, else its default's type); an unknown key is an error that
lists the accepted ones.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SuiteError

_ARG_SPLIT = re.compile(r":(?=[A-Za-z_]\w*=)")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
#: parameters the runner fills itself (never from the command line)
RUNNER_PARAMETERS = frozenset({"downstream_model"})


@dataclass(frozen=True)
class EnhancerSpec:
    """One enhancer of ``--enhancer``: its registry name and its constructor arguments (still text)."""

    name: str
    args: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How results name this enhancer: the name, plus its arguments when it has some."""
        return self.name if not self.args else self.name + ":" + ":".join(f"{k}={v}" for k, v in self.args.items())


def parse_enhancer_specs(text: str | list[str]) -> list[EnhancerSpec]:
    """``"identity,sympie:weights=X"`` (or a list of such items) -> specs; an empty list is an error."""
    items = text.split(",") if isinstance(text, str) else [part for item in text for part in item.split(",")]
    specs = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, _, rest = item.partition(":")
        args: dict[str, str] = {}
        head, *pairs = _ARG_SPLIT.split(":" + rest) if rest else [""]
        if head:  # text before the first key=value, e.g. 'tv_denoise:weight'
            raise SuiteError(f"--enhancer {item!r}: expected NAME:key=value, got {head[1:]!r}")
        for pair in filter(None, pairs):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise SuiteError(f"--enhancer {item!r}: expected NAME:key=value, got {pair!r}")
            if key in args:
                raise SuiteError(f"--enhancer {item!r}: argument {key!r} given twice")
            args[key] = value
        spec = EnhancerSpec(name.strip(), args)
        if spec in specs:
            raise SuiteError(f"--enhancer {text if isinstance(text, str) else ','.join(text)!r} lists "
                             f"{spec.label!r} twice")
        specs.append(spec)
    if not specs:
        raise SuiteError(f"--enhancer {text!r} names no enhancer: give at least one, e.g. identity,sympie")
    return specs


def constructor_parameters(factory: Any) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a class's ``__init__`` (or a function), without ``self`` and ``*args``."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters
    return {name: p for name, p in params.items()
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _annotation(factory: Any, name: str, param: inspect.Parameter) -> Any:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target).get(name, inspect.Parameter.empty)
    except Exception:  # unresolvable string annotations: fall back to the default's type
        return inspect.Parameter.empty


def _candidates(annotation: Any, default: Any) -> list[type]:
    if annotation is inspect.Parameter.empty:
        return [type(default)] if default not in (None, inspect.Parameter.empty) else [str]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def convert_value(text: str, annotation: Any, default: Any, where: str) -> Any:
    """``text`` as the parameter's type: bool, int, float, str or path (``none`` gives None where allowed)."""
    allows_none = default is None or (typing.get_origin(annotation) in (typing.Union, types.UnionType)
                                      and type(None) in typing.get_args(annotation))
    if allows_none and text.lower() == "none":
        return None
    candidates = _candidates(annotation, default)
    for kind in candidates:
        if kind is bool:
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            continue
        if kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
        if kind is str or kind is Path or (isinstance(kind, type) and issubclass(kind, (str, Path))):
            return text if kind is str else kind(text)
    if any(k in (str,) or typing.get_origin(k) is not None for k in candidates) or not candidates:
        return text
    names = " or ".join(getattr(k, "__name__", str(k)) for k in candidates)
    raise SuiteError(f"{where}: expected {names}, got {text!r}")


def enhancer_kwargs(spec: EnhancerSpec, factory: Any) -> dict[str, Any]:
    """The typed constructor arguments of ``spec`` for ``factory``; unknown keys are an error."""
    params = constructor_parameters(factory)
    accepted = sorted(set(params) - RUNNER_PARAMETERS)
    kwargs: dict[str, Any] = {}
    for key, text in spec.args.items():
        if key not in params or key in RUNNER_PARAMETERS:
            listing = ", ".join(accepted) if accepted else "none"
            raise SuiteError(f"--enhancer {spec.label!r}: enhancer {spec.name!r} takes no argument {key!r} "
                             f"(it accepts: {listing})")
        param = params[key]
        kwargs[key] = convert_value(text, _annotation(factory, key, param), param.default,
                                    f"--enhancer {spec.label!r}, argument {key!r}")
    return kwargs
