"""A Flax NNX model as a sweep's functions of pure parameters and state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

from gradtransforms.validation import check_callable

__all__ = ["nnx_functions"]


def _abstract_model(model_fn: Callable[[Any], Any]) -> Any:
    """The model `model_fn` builds, with shapes in place of arrays."""
    from flax import nnx

    model = nnx.eval_shape(lambda: model_fn(nnx.Rngs(0)))
    if not isinstance(model, nnx.Module):
        raise TypeError(
            "model_fn must return a flax.nnx.Module (model_fn(rngs) -> module); "
            f"got {type(model).__name__}."
        )
    return model


def nnx_functions(
    model_fn: Callable[[Any], Any],
    loss_fn: Callable[[Any, Any], jax.Array],
    metrics_fn: Callable[[Any, Any], Mapping[str, jax.Array]] | None,
) -> tuple[Callable, Callable, Callable]:
    """`(init_fn, loss_fn, metrics_fn)` of a stateful `Problem` for an NNX model.

    Parameters and state are nested dicts of arrays (`nnx.to_pure_dict`), so
    that optimizers, `vmap` and checkpoints see plain pytrees. The training
    and evaluation modes are two graph definitions, taken once from the
    model's abstract form: `.train()` and `.eval()` change only static
    attributes, not the variables.
    """
    from flax import nnx

    check_callable("model_fn", model_fn)
    check_callable("loss_fn", loss_fn)
    if metrics_fn is not None:
        check_callable("metrics_fn", metrics_fn)
    model = _abstract_model(model_fn)
    model.train()
    train_def, params_template, state_template = nnx.split(model, nnx.Param, ...)
    model.eval()
    eval_def = nnx.split(model, nnx.Param, ...)[0]

    def rebuild(graphdef: Any, params: Any, state: Any) -> Any:
        p = jax.tree.map(lambda x: x, params_template)  # a fresh copy to fill
        s = jax.tree.map(lambda x: x, state_template)
        nnx.replace_by_pure_dict(p, params)
        nnx.replace_by_pure_dict(s, state)
        return nnx.merge(graphdef, p, s)

    def init(key: jax.Array) -> tuple[Any, Any]:
        built = model_fn(nnx.Rngs(key))
        _, params, state = nnx.split(built, nnx.Param, ...)
        return nnx.to_pure_dict(params), nnx.to_pure_dict(state)

    def loss(params: Any, state: Any, batch: Any) -> tuple[jax.Array, Any]:
        model = rebuild(train_def, params, state)
        value = loss_fn(model, batch)
        return value, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))

    def metrics(params: Any, state: Any, batch: Any) -> Mapping[str, jax.Array]:
        model = rebuild(eval_def, params, state)
        if metrics_fn is None:
            return {"loss": loss_fn(model, batch)}
        return metrics_fn(model, batch)

    return init, loss, metrics
