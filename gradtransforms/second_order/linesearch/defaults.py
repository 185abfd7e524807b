"""A solver's default line search, as the default value of its `linesearch`.

optax writes the default line search of `optax.lbfgs` into the signature
(`linesearch=scale_by_zoom_linesearch(...)`), and `linesearch=None` means no
line search. The solvers here do the same, with one more need: their
`has_aux=True` must reach the default line search, whose `value_fn` then
returns `(value, aux)`. A `DefaultLinesearch` is that default: a line search
like any other (a `GradientTransformationExtraArgs`, usable as is), which
remembers how it was built, so that `resolve_linesearch` rebuilds it with
`has_aux=True` when the solver is given `has_aux=True`. Its repr is the call
that builds it, e.g.
`scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy='one')`.
A line search passed explicitly is used as given (build it with `has_aux`
yourself).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from gradtransforms.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    identity,
)
from gradtransforms.validation import check_transformation

__all__ = ["DefaultLinesearch", "default_linesearch", "resolve_linesearch"]


class DefaultLinesearch(GradientTransformationExtraArgs):
    """A line search that is a solver's default `linesearch` argument.

    Built by `default_linesearch(build, **kwargs)`: it is `build(**kwargs)`,
    and `with_aux()` is `build(**kwargs, has_aux=True)`.
    """

    def with_aux(self) -> GradientTransformationExtraArgs:
        """The same line search for a `value_fn` returning `(value, aux)`."""
        return self.__dict__["build"](has_aux=True)

    def __repr__(self) -> str:
        return self.__dict__.get("call", "DefaultLinesearch(...)")


def default_linesearch(
    build: Callable[..., GradientTransformationExtraArgs], **kwargs: Any
) -> DefaultLinesearch:
    """The line search `build(**kwargs)`, as a `DefaultLinesearch`."""
    built = build(**kwargs)
    default = DefaultLinesearch(built.init, built.update)
    arguments = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    default.__dict__.update(
        build=functools.partial(build, **kwargs),
        call=f"{build.__name__}({arguments})",
    )
    return default


def resolve_linesearch(linesearch: Any, has_aux: bool) -> GradientTransformation:
    """The link a solver chains for its `linesearch` argument.

    `None`: no line search (`identity()`, as optax). A `DefaultLinesearch`:
    itself, or rebuilt with `has_aux=True` when `has_aux`. Anything else: a
    transformation, used as given.
    """
    if linesearch is None:
        return identity()
    if isinstance(linesearch, DefaultLinesearch) and has_aux:
        return linesearch.with_aux()
    check_transformation("linesearch", linesearch)
    return linesearch
