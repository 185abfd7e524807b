"""Helpers coupled to Flax NNX: the averaged model, and LSUV initialisation.

Everything else in the library works on plain pytrees; these two work on
`flax.nnx.Module` objects. `averaged_model` is exported as
`gradtransforms.averaged_model`, `lsuv` and `LSUVLayer` as
`gradtransforms.init.lsuv` and `gradtransforms.init.LSUVLayer`.
"""

from __future__ import annotations

import contextvars
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms.averaging import averaged_params
from gradtransforms.validation import (
    check_bool,
    check_non_negative,
    check_positive,
    check_positive_int,
)

__all__ = ["LSUVLayer", "averaged_model", "lsuv"]


def averaged_model(model: Any, opt_state: Any) -> Any:
    """A copy of a Flax NNX model carrying the averaged parameters.

    For evaluation: the training model is not touched. The average is found
    with `averaged_params` in `opt_state` (e.g. `nnx.Optimizer.opt_state`),
    cast to each parameter's dtype and written into a clone of `model`.

    Args:
      model: the `flax.nnx.Module` being trained.
      opt_state: its optimizer state, whose chain ends in an average.

    Returns:
      A new module with the averaged parameters.
    """
    from flax import nnx

    params = nnx.as_pure(nnx.state(model, nnx.Param))
    average = averaged_params(nnx.as_pure(opt_state), params)
    average = jax.tree.map(
        lambda a, p: jnp.asarray(a).astype(jnp.asarray(p).dtype), average, params
    )
    copy = nnx.clone(model)
    nnx.update(copy, average)
    return copy


class LSUVLayer(NamedTuple):
    """What `lsuv` did to one layer."""

    path: str  # the layer's attribute path in the model, e.g. "layers/0"
    std_before: float  # std of the layer's output before rescaling
    std_after: float  # std of the layer's output after rescaling
    iterations: int  # number of rescalings applied
    converged: bool  # |std_after - target_std| <= tol * target_std


def _path_str(path: tuple) -> str:
    return "/".join(str(p) for p in path) or "<model>"


class _Recording(NamedTuple):
    """The measuring pass in progress: which layers to record, and what they gave."""

    paths: dict[int, str]  # id(layer) -> its path
    outputs: dict[str, Any]  # path -> the layer's first output, in call order
    active: set[int]  # layers inside their own __call__ (record the outermost)


_recording: contextvars.ContextVar[_Recording | None] = contextvars.ContextVar(
    "gradtransforms_lsuv_recording", default=None
)


@functools.cache
def _recording_subclass(cls: type) -> type:
    """`cls` with a `__call__` that records its output in the active `_Recording`."""

    def __call__(self, *args, **kwargs):
        rec = _recording.get()
        if rec is None or id(self) in rec.active:
            return super(recording, self).__call__(*args, **kwargs)
        rec.active.add(id(self))
        try:
            out = super(recording, self).__call__(*args, **kwargs)
        finally:
            rec.active.discard(id(self))
        path = rec.paths.get(id(self))
        if path is not None and path not in rec.outputs:
            rec.outputs[path] = out
        return out

    # Any: a class made at run time from `cls`; a checker cannot see the
    # `__call__` that `super(recording, self)` above reaches.
    recording: Any = type(cls.__name__, (cls,), {"__call__": __call__})
    return recording


def _measure(forward: Callable, layer_types: tuple[type, ...]) -> Callable:
    """`measure(model, x) -> {path: std}` of each layer's first output, by call."""
    from flax import nnx

    def measure(model: Any, x: Any) -> dict[str, jax.Array]:
        layers = [m for _, m in nnx.iter_modules(model) if isinstance(m, layer_types)]
        paths = {
            id(m): _path_str(p)
            for p, m in nnx.iter_modules(model)
            if isinstance(m, layer_types)
        }
        rec = _Recording(paths, {}, set())
        classes = [(m, type(m)) for m in layers]
        token = _recording.set(rec)
        try:
            for m, cls in classes:  # this model's layers only, for this pass only
                object.__setattr__(m, "__class__", _recording_subclass(cls))
            forward(model, x)
        finally:
            for m, cls in classes:
                object.__setattr__(m, "__class__", cls)
            _recording.reset(token)
        return {p: jnp.std(jnp.asarray(y, jnp.float32)) for p, y in rec.outputs.items()}

    return measure


def _check_layers(model: Any, layer_types: Any) -> tuple[tuple[type, ...], dict]:
    """The layer classes to rescale and the model's layers of those classes."""
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be a flax.nnx.Module; got {type(model)!r}.")
    if layer_types is None:
        layer_types = (nnx.Linear, nnx.Conv)
    if not isinstance(layer_types, tuple) or not all(
        isinstance(t, type) and issubclass(t, nnx.Module) for t in layer_types
    ):
        raise TypeError(
            f"layer_types must be a tuple of nnx.Module classes; got {layer_types!r}."
        )
    layers = {
        _path_str(p): m
        for p, m in nnx.iter_modules(model)
        if isinstance(m, layer_types)
    }
    for path, m in layers.items():
        if not isinstance(getattr(m, "kernel", None), nnx.Param):
            raise TypeError(f"layer {path} has no `kernel` Param to rescale.")
    return layer_types, layers


def lsuv(
    model: Any,
    x: Any,
    *,
    target_std: float = 1.0,
    tol: float = 1e-3,
    max_iters: int = 10,
    layer_types: tuple[type, ...] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
    jit: bool = True,
) -> tuple[LSUVLayer, ...]:
    """Data-driven init: rescale each layer so its outputs on a batch have a target std.

    Layer-sequential unit-variance scaling (LSUV, Mishkin & Matas, 2015;
    textbook §8.4 notes the scale can be set from data). For every Linear/Conv
    layer $l$ of a Flax NNX model, in the order the forward pass calls them,
    repeat until $|s_l - \\tau| \\le \\mathrm{tol}\\,\\tau$ or `max_iters`
    rescalings:

    $$ s_l = \\mathrm{std}(B_l), \\qquad W_l \\leftarrow W_l \\, \\tau / s_l, $$

    where $B_l$ is the layer's output (its pre-activation, bias included) on the
    batch `x`, the standard deviation is over all its entries, and $\\tau$ is
    `target_std`. Layer $l$ is fixed before layer $l + 1$ is measured, so each
    layer sees inputs that are already scaled. With zero biases one rescaling
    is exact; a bias makes $s_l$ non-linear in the scale, hence the loop.
    Mishkin & Matas pre-initialise with `orthogonal`; pick that as the layers'
    `kernel_init` to reproduce their method.

    Only the kernels change. The model runs in its current mode (call
    `model.train()` or `model.eval()` first); every non-parameter variable
    (BatchNorm running statistics, RNG counters) is restored afterwards. The
    layers' outputs are recorded by giving each layer of the model, for the
    duration of the measuring pass only, a subclass of its own class whose
    `__call__` records the output; no class is changed, so other models and
    threads are not affected. The measuring pass is compiled once
    with `nnx.jit` and rerun after each rescaling.

    Args:
      model: a `flax.nnx.Module`; it is modified in place.
      x: the calibration batch (one minibatch of inputs).
      target_std: $\\tau > 0$.
      tol: relative tolerance $\\ge 0$ on the std.
      max_iters: maximum number of rescalings per layer, $\\ge 1$.
      layer_types: the module classes to rescale (each has a `kernel` `Param`);
        default `(nnx.Linear, nnx.Conv)`, subclasses included.
      forward: `forward(model, x)` runs the model; default `model(x)`.
      jit: compile the measuring pass; `False` runs it eagerly (for a
        `forward` that cannot be traced).

    Returns:
      One `LSUVLayer` per rescaled layer, in call order (layers that the
      forward pass does not call are left alone).

    Examples:
      >>> from flax import nnx
      >>> import jax
      >>> model = nnx.Sequential(nnx.Linear(8, 16, rngs=nnx.Rngs(0)), jax.nn.relu,
      ...                        nnx.Linear(16, 4, rngs=nnx.Rngs(1)))
      >>> x = jax.random.normal(jax.random.key(2), (256, 8))
      >>> [round(r.std_after, 3) for r in lsuv(model, x)]
      [1.0, 1.0]
    """
    from flax import nnx

    check_positive("target_std", target_std)
    check_non_negative("tol", tol)
    check_positive_int("max_iters", max_iters)
    check_bool("jit", jit)
    layer_types, layers = _check_layers(model, layer_types)
    if forward is None:
        forward = lambda m, inputs: m(inputs)
    measure = _measure(forward, layer_types)
    run = nnx.jit(measure) if jit else measure
    saved = nnx.clone(nnx.state(model, nnx.Not(nnx.Param)))
    reports = []
    try:
        stds = run(model, x)
        for path in list(stds):  # dicts keep insertion order: the call order
            s = s0 = float(stds[path])
            iterations = 0
            while abs(s - target_std) > tol * target_std and iterations < max_iters:
                if not math.isfinite(s) or s == 0.0:
                    raise ValueError(
                        f"lsuv: layer {path} has output std {s} on the "
                        "calibration batch; it cannot be rescaled."
                    )
                kernel = layers[path].kernel
                kernel[...] = kernel[...] * (target_std / s)
                iterations += 1
                stds = run(model, x)
                s = float(stds[path])
            converged = abs(s - target_std) <= tol * target_std
            reports.append(LSUVLayer(path, s0, s, iterations, converged))
    finally:
        nnx.update(model, saved)
    return tuple(reports)
