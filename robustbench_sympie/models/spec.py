"""``--model NAME:key=value:...``: constructor arguments of a model, parsed like ``--enhancer``'s."""

from __future__ import annotations

import functools
from typing import Any

from ..enhancers.spec import _annotation, constructor_parameters, convert_value, parse_enhancer_specs
from ..errors import SuiteError
from ..registry import Registry


def model_spec_kwargs(text: str, registry: Registry) -> tuple[str, dict[str, Any]]:
    """``"name:k=v:..."`` -> (name, typed keyword arguments of the registered factory); unknown keys are an error."""
    spec = parse_enhancer_specs(text)[0]
    factory = registry.get(spec.name)
    params = constructor_parameters(factory)
    kwargs: dict[str, Any] = {}
    for key, value in spec.args.items():
        if key not in params:
            raise SuiteError(f"--model {text!r}: model {spec.name!r} takes no argument {key!r} "
                             f"(it accepts: {', '.join(sorted(params)) or 'none'})")
        typed = factory.func if isinstance(factory, functools.partial) else factory  # partials carry no hints
        kwargs[key] = convert_value(value, _annotation(typed, key, params[key]), params[key].default,
                                    f"--model {text!r}, argument {key!r}")
    return spec.name, kwargs
