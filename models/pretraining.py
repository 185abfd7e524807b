"""Greedy supervised pretraining of a deep MLP, one hidden layer at a time (§8.7.4)."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
from flax import nnx

from gradtransforms.base import apply_updates
from gradtransforms.models.mlp import MLP
from gradtransforms.models.options import check_features
from gradtransforms.validation import (
    check_callable,
    check_non_negative_int,
    check_positive_int,
)

__all__ = ["PretrainResult", "cross_entropy", "fit", "greedy_pretrain"]

_HE_NORMAL = jax.nn.initializers.he_normal()

_Model = TypeVar("_Model", bound=nnx.Module)


class PretrainResult(NamedTuple):
    """What `greedy_pretrain` returns: the deep network, its stages and losses."""

    model: MLP  # the requested network, pretrained then fine-tuned
    stages: tuple[MLP, ...]  # stage l's network after its training (l = 1..L)
    stage_losses: tuple[jax.Array, ...]  # per stage, (stage_steps,) minibatch losses
    finetune_losses: jax.Array  # (finetune_steps,) minibatch losses


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy with integer labels (the default objective)."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def greedy_pretrain(
    features: Sequence[int],
    x: Any,
    y: Any,
    *,
    optimizer: Any,
    stage_steps: int,
    finetune_steps: int,
    batch_size: int,
    freeze: bool = True,
    finetune_optimizer: Any = None,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy,
    kernel_init: Callable[..., jax.Array] = _HE_NORMAL,
    bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
    param_dtype: Any = jnp.float32,
    key: jax.Array | int = 0,
) -> PretrainResult:
    """Build the MLP `features` by greedy supervised pretraining, then fine-tune it.

    Figure 8.7 (Bengio et al., 2007). With `features = (d_0, d_1, ..., d_L, c)`
    ($L \\ge 1$ hidden layers, $c$ outputs) there are $L$ stages. Stage $l$
    trains, on $(x, y)$ with the objective `loss_fn(logits, y)`, the network

    $$h_j = f(h_{j-1} W_j + b_j) \\; (j = 1, \\dots, l), \\qquad
      \\hat y = h_l V_l + c_l \\qquad (h_0 = x),$$

    a `models.MLP` with features `(d_0, ..., d_l, c)`, where
    $W_1, b_1, \\dots, W_{l-1}, b_{l-1}$ are the hidden layers of stage $l - 1$
    and the new hidden layer $W_l, b_l$ and output layer $V_l, c_l$ are freshly
    initialised (stage $l - 1$'s output layer is discarded). With
    `freeze=True` only $W_l, b_l, V_l, c_l$ are trained and the earlier layers
    are kept exactly: as in Figure 8.7 (c), the new one-hidden-layer MLP
    `(d_{l-1}, d_l, c)` is trained on the output $h_{l-1}$ of the fixed layers,
    computed once per stage (the same gradients as through the stack, at the
    cost of a shallow network). With `freeze=False` every layer is trained at
    every stage (the caption's "fine-tune ... at each stage"). Finally the whole
    network of stage $L$ (its hidden layers and its output layer) is
    fine-tuned jointly.

    Every run of steps is `fit` (a jit-compiled `lax.scan`, shuffled epochs,
    a fresh optimizer state). Stage $l$ draws the initial values of its new
    layers and its minibatch order from
    `init_key, data_key = jax.random.split(jax.random.fold_in(key, l))`, so the
    first stages do not depend on the depth requested, and the fine-tuning is
    exactly `fit(stages[-1], x, y, optimizer=finetune_optimizer,
    steps=finetune_steps, batch_size=batch_size, loss_fn=loss_fn,
    key=jax.random.fold_in(key, L + 1))`.

    Args:
      features: layer widths `(d_0, d_1, ..., d_L, c)`, at least three.
      x: inputs, shape `(n, d_0)`.
      y: targets, whatever `loss_fn` takes; `n` along the first axis (integer
        class labels for the default cross-entropy).
      optimizer: the gradient transformation of the stages.
      stage_steps: minibatch steps per stage, > 0.
      finetune_steps: minibatch steps of the final joint fine-tuning, >= 0.
      batch_size: examples per minibatch, at most `n`.
      freeze: keep the earlier hidden layers fixed while a stage trains.
      finetune_optimizer: the transformation of the fine-tuning; default
        `optimizer`.
      loss_fn: `(logits, y_batch) -> scalar`; default mean softmax
        cross-entropy with integer labels.
      kernel_init: initialiser of the kernels (default He normal).
      bias_init: initialiser of the biases (default zeros).
      activation: the hidden nonlinearity $f$.
      param_dtype: dtype of the parameters.
      key: a PRNG key or an int seed.

    Returns:
      A `PretrainResult(model, stages, stage_losses, finetune_losses)`: the
      fine-tuned `MLP(features, batch_norm=False)`; the $L$ stage networks
      after their training (`stages[-1]` has `features` and is where the
      fine-tuning starts); per stage its `(stage_steps,)` minibatch losses; the
      `(finetune_steps,)` fine-tuning losses.

    Examples:
      >>> import numpy as np, gradtransforms as gt
      >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> result = greedy_pretrain(
      ...     (8, 16, 16, 2), x, y, optimizer=gt.adam(1e-2),
      ...     stage_steps=20, finetune_steps=10, batch_size=16)
      >>> len(result.model.linears), len(result.stages)
      (3, 2)
    """
    features = check_features("features", features, min_len=3)
    _check_transformation("optimizer", optimizer)
    if finetune_optimizer is None:
        finetune_optimizer = optimizer
    _check_transformation("finetune_optimizer", finetune_optimizer)
    check_positive_int("stage_steps", stage_steps)
    check_non_negative_int("finetune_steps", finetune_steps)
    check_callable("kernel_init", kernel_init)
    check_callable("bias_init", bias_init)
    check_callable("activation", activation)
    x, y = _check_data(x, y, features[0], batch_size, loss_fn)
    key = _as_key(key)

    def mlp(widths: tuple[int, ...], init=kernel_init, init_key=0) -> MLP:
        return MLP(
            widths,
            batch_norm=False,
            kernel_init=init,
            bias_init=bias_init,
            activation=activation,
            param_dtype=param_dtype,
            rngs=nnx.Rngs(init_key),
        )

    def train(model: MLP, x: jax.Array, data_key: jax.Array, steps: int, tx: Any):
        return _fit(
            model, x, y, _minibatches(data_key, len(x), batch_size, steps), tx, loss_fn
        )

    num_hidden = len(features) - 2
    stages: list[MLP] = []
    stage_losses: list[jax.Array] = []
    for depth in range(1, num_hidden + 1):
        init_key, data_key = jax.random.split(jax.random.fold_in(key, depth))
        # The new hidden layer and a fresh output layer: a one-hidden-layer MLP.
        head = mlp(features[depth - 1 : depth + 1] + features[-1:], init_key=init_key)
        lower = list(stages[-1].linears[:-1]) if stages else []
        if freeze or not stages:
            # Figure 8.7 (c): the head learns from the fixed lower layers' output.
            inputs = _hidden(lower, activation, x)
            head, losses = train(head, inputs, data_key, stage_steps, optimizer)
            model = _stack(mlp, features[: depth + 1] + features[-1:], lower, head)
        else:
            model = _stack(mlp, features[: depth + 1] + features[-1:], lower, head)
            model, losses = train(model, x, data_key, stage_steps, optimizer)
        stages.append(model)
        stage_losses.append(losses)

    data_key = jax.random.fold_in(key, num_hidden + 1)
    model, finetune_losses = train(
        stages[-1], x, data_key, finetune_steps, finetune_optimizer
    )
    return PretrainResult(model, tuple(stages), tuple(stage_losses), finetune_losses)


def fit(
    model: nnx.Module,
    x: Any,
    y: Any,
    *,
    optimizer: Any,
    steps: int,
    batch_size: int,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy,
    key: jax.Array | int = 0,
) -> tuple[nnx.Module, jax.Array]:
    """Train every parameter of `model` for `steps` minibatch steps (a pure loop).

    $$(u_t, s_t) = \\mathrm{update}(\\nabla_\\theta L(\\theta; B_t), s_{t-1}, \\theta),
      \\qquad \\theta \\leftarrow \\theta + u_t \\qquad (t = 1, \\dots, T),$$

    with $L$ = `loss_fn(model(x_B), y_B)` on minibatch $B_t$ and the optimizer
    state initialised afresh. Minibatches are shuffled epochs, one after
    another (`gradtransforms.training.epoch_indices` with the key's
    `jax.random.split` into one key per epoch; the last incomplete batch of
    each epoch is dropped). The loop is one `lax.scan`, compiled once per
    model structure, optimizer, loss and shapes. This is the loop of every
    stage of `greedy_pretrain`, and a from-scratch baseline for it.

    Args:
      model: an NNX module whose state is all `nnx.Param` (no BatchNorm);
        left unchanged.
      x: inputs, `n` along the first axis.
      y: targets, `n` along the first axis.
      optimizer: a gradient transformation.
      steps: number of minibatch steps, >= 0 (0 returns a copy of `model`).
      batch_size: examples per minibatch, at most `n`.
      loss_fn: `(model(x_batch), y_batch) -> scalar`; default mean softmax
        cross-entropy with integer labels.
      key: a PRNG key or an int seed (the minibatch order).

    Returns:
      `(trained, losses)`: a new module and the `(steps,)` minibatch losses.

    Examples:
      >>> import numpy as np, gradtransforms as gt
      >>> from flax import nnx
      >>> from models import MLP
      >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> model = MLP((8, 16, 2), batch_norm=False, rngs=nnx.Rngs(0))
      >>> trained, losses = fit(
      ...     model, x, y, optimizer=gt.adam(1e-2), steps=50, batch_size=16)
      >>> bool(losses[-5:].mean() < losses[:5].mean())
      True
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be a flax.nnx.Module; got {type(model)!r}.")
    _check_transformation("optimizer", optimizer)
    check_non_negative_int("steps", steps)
    x, y = _check_data(x, y, None, batch_size, loss_fn)
    indices = _minibatches(_as_key(key), len(x), batch_size, steps)
    return _fit(model, x, y, indices, optimizer, loss_fn)


def _check_data(x: Any, y: Any, num_inputs: int | None, batch_size: int, loss_fn: Any):
    """`x` and `y` as arrays with as many rows, and a batch size that fits."""
    check_positive_int("batch_size", batch_size)
    check_callable("loss_fn", loss_fn)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if num_inputs is not None and (x.ndim != 2 or x.shape[1] != num_inputs):
        raise ValueError(
            f"x must have shape (n, {num_inputs}) (features[0] inputs); got {x.shape}."
        )
    if x.ndim < 1 or y.ndim < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"x and y must have the same number of rows; got shapes {x.shape} and "
            f"{y.shape}."
        )
    if batch_size > x.shape[0]:
        raise ValueError(
            f"batch_size must be at most the {x.shape[0]} examples; got {batch_size}."
        )
    return x, y


def _as_key(key: Any) -> jax.Array:
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key)  # a legacy `jax.random.PRNGKey`
    raise TypeError(f"key must be a PRNG key or an int seed; got {key!r}.")


def _check_transformation(name: str, tx: Any) -> None:
    if not (
        callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))
    ):
        raise TypeError(
            f"{name} must be a gradient transformation (with init and update); "
            f"got {tx!r}."
        )


def _minibatches(key: jax.Array, n: int, batch_size: int, steps: int) -> jax.Array:
    """`(steps, batch_size)` example indices: shuffled epochs, one after another."""
    from gradtransforms.training import epoch_indices

    if steps == 0:
        return jnp.zeros((0, batch_size), jnp.int32)
    epochs = -(-steps // (n // batch_size))
    keys = jax.random.split(key, epochs)
    indices, _ = jax.vmap(lambda k: epoch_indices(k, n, batch_size))(keys)
    return indices.reshape(-1, batch_size)[:steps]


def _hidden(
    layers: Sequence[nnx.Linear],
    activation: Callable[[jax.Array], jax.Array],
    x: jax.Array,
) -> jax.Array:
    """The output of the hidden `layers` (their $h_{l-1}$) for inputs `x`."""
    for layer in layers:
        x = activation(layer(x))
    return x


def _stack(
    mlp: Callable[..., MLP],
    widths: tuple[int, ...],
    lower: Sequence[nnx.Linear],
    head: MLP,
) -> MLP:
    """`MLP(widths)` made of the `lower` layers, then `head`'s two layers."""
    model = mlp(widths, init=jax.nn.initializers.zeros)  # every layer replaced
    for j, layer in enumerate([*lower, *head.linears]):
        nnx.update(model.linears[j], nnx.state(layer))
    return model


def _fit(
    model: _Model,
    x: jax.Array,
    y: jax.Array,
    indices: jax.Array,
    tx: Any,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
) -> tuple[_Model, jax.Array]:
    """Train every parameter of `model`; a new model and the minibatch losses."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    if jax.tree.leaves(rest):
        raise ValueError(
            "model must hold only nnx.Param state (no BatchNorm statistics); got "
            f"other state at {[path for path, _ in nnx.to_flat_state(rest)]}."
        )
    if not len(indices):
        return nnx.clone(model), jnp.zeros((0,), jnp.float32)
    params, losses = _train(
        params, x, y, indices, graphdef=graphdef, tx=tx, loss_fn=loss_fn
    )
    return nnx.merge(graphdef, params), losses


@functools.partial(jax.jit, static_argnames=("graphdef", "tx", "loss_fn"))
def _train(
    params: Any,
    x: jax.Array,
    y: jax.Array,
    indices: jax.Array,
    *,
    graphdef: Any,
    tx: Any,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
) -> tuple[Any, jax.Array]:
    """`lax.scan` of minibatch steps (one compilation per network shape)."""

    def objective(params, x_batch, y_batch):
        return loss_fn(nnx.merge(graphdef, params, copy=True)(x_batch), y_batch)

    def step(carry, idx):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(objective)(params, x[idx], y[idx])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), indices)
    return params, losses
