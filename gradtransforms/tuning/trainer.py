"""One training run as a pure function of a configuration, for `vmap`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtransforms.base import GradientTransformation, apply_updates
from gradtransforms.injection import inject_hyperparams
from gradtransforms.training.batches import count_examples, epoch_indices
from gradtransforms.validation import check_positive_int

__all__ = [
    "HyperparamSource",
    "Problem",
    "TrainSettings",
    "Trainer",
    "build_trainer",
    "check_hyperparams",
    "make_train_fn",
]


class Problem(NamedTuple):
    """What `sweep` trains: initial parameters, a loss, and the data."""

    init_fn: Callable[[jax.Array], Any]
    """`init_fn(key) -> params`: the initial parameters (any pytree). Traced
    under `jit`/`vmap`, or called once outside them when runs share a key."""
    loss_fn: Callable[[Any, Any], jax.Array]
    """`loss_fn(params, batch) -> scalar`: the mean loss of a batch, a pytree
    like `train_data` with `batch_size` examples."""
    train_data: Any
    """A pytree of arrays sharing their leading (example) axis."""
    valid_data: Any = None
    """Optional: the same for the validation set, evaluated after each epoch."""
    metrics_fn: Callable[[Any, Any], Mapping[str, jax.Array]] | None = None
    """Optional: `metrics_fn(params, batch) -> {name: scalar}` on the
    validation set (default `{"loss": loss_fn(params, batch)}`)."""


def _check_problem(problem: Any) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(
            f"problem must be a gradtransforms.tuning.Problem; got {problem!r}."
        )
    for name in ("init_fn", "loss_fn"):
        if not callable(getattr(problem, name)):
            raise TypeError(f"problem.{name} must be callable.")
    if problem.metrics_fn is not None and not callable(problem.metrics_fn):
        raise TypeError("problem.metrics_fn must be callable or None.")
    if problem.metrics_fn is not None and problem.valid_data is None:
        raise ValueError("problem.metrics_fn needs problem.valid_data.")
    count_examples(problem.train_data)
    if problem.valid_data is not None:
        count_examples(problem.valid_data)


HyperparamSource = str | Callable[[Mapping[str, Any]], Any]


def check_hyperparams(hyperparams: Any) -> dict[str, HyperparamSource]:
    if isinstance(hyperparams, Mapping):
        spec = dict(hyperparams)
    elif isinstance(hyperparams, Iterable) and not isinstance(hyperparams, str):
        spec = {name: name for name in hyperparams}
    else:
        raise TypeError(
            "hyperparams must be a dict {optimizer argument: configuration name "
            f"or function of the configuration}} or a list of names; got "
            f"{hyperparams!r}."
        )
    for arg, source in spec.items():
        if not isinstance(arg, str):
            raise TypeError(f"hyperparams: argument names must be str; got {arg!r}.")
        if not (isinstance(source, str) or callable(source)):
            raise TypeError(
                f"hyperparams[{arg!r}] must be a configuration name or a function "
                f"of the configuration; got {source!r}."
            )
    return spec


def _lookup(config: Mapping[str, Any], name: str, what: str) -> Any:
    try:
        return config[name]
    except KeyError:
        raise KeyError(
            f"{what} names {name!r}, which is not in the configuration "
            f"({sorted(config)})."
        ) from None


def _scale_weights(params: Any, scale: Any) -> Any:
    """Multiply every parameter array of rank >= 2 (weights, kernels) by `scale`."""

    def leaf(p):
        if jnp.ndim(p) >= 2:
            return p * jnp.asarray(scale).astype(jnp.result_type(p))
        return p

    return jax.tree.map(leaf, params)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _batch_orders(
    key: jax.Array, num_examples: int, batch_size: int, num_epochs: int, shuffle: bool
) -> jax.Array:
    """Every epoch's minibatch indices, `(num_epochs, steps, batch_size)`.

    Module-level and jitted, so that sweeps of the same sizes share one
    compilation.
    """
    keys = jax.random.split(jax.random.split(key)[1], num_epochs)
    return jax.vmap(
        lambda k: epoch_indices(k, num_examples, batch_size, shuffle=shuffle)[0]
    )(keys)


class Trainer(NamedTuple):
    init: Callable[[jax.Array], Any]
    orders: Callable[[jax.Array], jax.Array]
    run: Callable[..., tuple[dict[str, jax.Array], Any]]


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How every run of a sweep trains: the keywords of `make_train_fn`, checked once.

    `sweep`, `sweeper` and `make_train_fn` take these as keyword arguments and
    pass them on as one object.
    """

    optimizer: Callable[..., GradientTransformation]
    hyperparams: Any
    optimizer_kwargs: Mapping[str, Any] | None = None
    static_args: Iterable[str] = ()
    init_scale: str | None = None
    num_epochs: int = 1
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if not callable(self.optimizer):
            raise TypeError(
                f"optimizer must be an optimizer factory such as gt.adam; got "
                f"{self.optimizer!r}."
            )
        spec = check_hyperparams(self.hyperparams)
        fixed = dict(self.optimizer_kwargs or {})
        both = sorted(set(fixed) & set(spec))
        if both:
            raise ValueError(
                f"optimizer_kwargs and hyperparams both set {both}; give each "
                "optimizer argument once."
            )
        if self.init_scale is not None and not isinstance(self.init_scale, str):
            raise TypeError(
                "init_scale must be a configuration name or None; got "
                f"{self.init_scale!r}."
            )
        check_positive_int("num_epochs", self.num_epochs)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        # Normalised forms, so that later code reads one shape of each.
        object.__setattr__(self, "hyperparams", spec)
        object.__setattr__(self, "optimizer_kwargs", fixed)
        object.__setattr__(self, "static_args", tuple(self.static_args))


def _batching(problem: Problem, settings: TrainSettings) -> tuple[int, int, bool]:
    """`(num_examples, batch_size, shuffle)`: full batches when `batch_size` is None."""
    num_examples = count_examples(problem.train_data)
    if settings.batch_size is None:
        return num_examples, num_examples, False
    if settings.batch_size > num_examples:
        raise ValueError(
            f"batch_size ({settings.batch_size}) exceeds the {num_examples} "
            "training examples."
        )
    return num_examples, settings.batch_size, True


def _optimizer_for(settings: TrainSettings, inject: Callable, config: Mapping):
    """The injected optimizer of one configuration."""
    assert settings.optimizer_kwargs is not None  # a dict after __post_init__
    kwargs = dict(settings.optimizer_kwargs)
    for arg, source in settings.hyperparams.items():
        kwargs[arg] = (
            _lookup(config, source, f"hyperparams[{arg!r}]")
            if isinstance(source, str)
            else source(config)
        )
    return inject(**kwargs)


def _validation_metrics(problem: Problem, params: Any, valid_data: Any) -> dict:
    """`{"valid_<name>": value}` of `problem.metrics_fn` (default: the loss)."""
    metrics_fn = problem.metrics_fn or (lambda p, b: {"loss": problem.loss_fn(p, b)})
    values = metrics_fn(params, valid_data)
    if not isinstance(values, Mapping):
        raise TypeError(
            "problem.metrics_fn must return a dict {name: scalar}; got "
            f"{type(values).__name__}."
        )
    return {f"valid_{k}": v for k, v in values.items()}


def build_trainer(problem: Problem, settings: TrainSettings) -> Trainer:
    """Validate the problem once; return the pieces of a training run."""
    _check_problem(problem)
    num_examples, batch_size, shuffle = _batching(problem, settings)
    inject = inject_hyperparams(settings.optimizer, static_args=settings.static_args)
    grad_fn = jax.value_and_grad(problem.loss_fn)
    has_valid = problem.valid_data is not None

    def init(key):
        """The initial parameters of a run with this key."""
        return problem.init_fn(jax.random.split(key)[0])

    def orders(key):
        """The minibatch indices of a run with this key, `(epochs, steps, B)`."""
        return _batch_orders(
            key, num_examples, batch_size, settings.num_epochs, shuffle
        )

    def run(config, params, orders, train_data, valid_data):
        """One run from its initial parameters and minibatch orders."""
        if settings.init_scale is not None:
            scale = _lookup(config, settings.init_scale, "init_scale")
            params = _scale_weights(params, scale)
        tx = _optimizer_for(settings, inject, config)

        def step(carry, idx):
            params, opt_state = carry
            batch = jax.tree.map(lambda x: x[idx], train_data)
            loss, grads = grad_fn(params, batch)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (apply_updates(params, updates), opt_state), loss

        def epoch(carry, idx):
            carry, losses = jax.lax.scan(step, carry, idx)
            out = {"train_loss": jnp.mean(losses)}
            if has_valid:
                out.update(_validation_metrics(problem, carry[0], valid_data))
            return carry, out

        carry = (params, tx.init(params))
        (params, _), metrics = jax.lax.scan(epoch, carry, orders)
        return metrics, params

    return Trainer(init, orders, run)


def make_train_fn(
    problem: Problem,
    *,
    optimizer: Callable[..., GradientTransformation],
    hyperparams: Mapping[str, HyperparamSource] | Sequence[str],
    optimizer_kwargs: Mapping[str, Any] | None = None,
    static_args: Iterable[str] = (),
    init_scale: str | None = None,
    num_epochs: int,
    batch_size: int | None = None,
) -> Callable[[Mapping[str, Any], jax.Array], tuple[dict[str, jax.Array], Any]]:
    """One training run as a pure function of a configuration: `vmap` it.

    Returns `train_fn(config, key) -> (metrics, params)`, where `config` maps
    names to scalars (arrays, or Python values for static arguments). It
    computes, all inside JAX so that it can be `jit`-ed and `vmap`-ed over
    `config`:

    1. $\\theta_0 =$ `problem.init_fn(k_0)`, with every array of rank
       $\\ge 2$ (the weights; not biases) multiplied by $s$ =
       `config[init_scale]` if `init_scale` is given;
    2. the optimizer `inject_hyperparams(optimizer, static_args)(**kwargs)`,
       whose keyword arguments are `optimizer_kwargs` plus, for each
       `arg: source` of `hyperparams`, `config[source]` (a name) or
       `source(config)` (a function: e.g. a schedule built from the
       configuration, `lambda h: gt.linear_decay_schedule(h["lr"],
       h["lr"] / 100, steps)`);
    3. `num_epochs` epochs of minibatch steps
       $\\theta \\leftarrow \\theta + u(\\nabla L_B(\\theta); h)$, each epoch one
       `lax.scan` over a fresh permutation (`gt.training.epoch_indices`,
       dropping the last incomplete batch; the full training set per step if
       `batch_size` is None);
    4. after each epoch, the mean minibatch loss and `problem.metrics_fn` on
       the validation set.

    `k_0` and the minibatch orders come from `key`.

    Args:
      problem: a `Problem`.
      optimizer: an optimizer factory, e.g. `gt.adam`.
      hyperparams: `{optimizer argument: configuration name or function of
        the configuration}`, or a list of names that are both.
      optimizer_kwargs: fixed keyword arguments of `optimizer`.
      static_args: arguments passed to `optimizer` unchanged rather than as
        hyperparameter arrays (see `inject_hyperparams`).
      init_scale: the configuration name of the initial weight scale $s$.
      num_epochs: passes over the training set, >= 1.
      batch_size: examples per step, or None for full-batch steps.

    Returns:
      `train_fn(config, key)` returning `(metrics, params)`: `metrics` a dict
      of per-epoch curves of shape `(num_epochs,)` (`"train_loss"`, then
      `"valid_<name>"` for each validation metric) and the final parameters.
    """
    settings = TrainSettings(
        optimizer=optimizer,
        hyperparams=hyperparams,
        optimizer_kwargs=optimizer_kwargs,
        static_args=static_args,
        init_scale=init_scale,
        num_epochs=num_epochs,
        batch_size=batch_size,
    )
    trainer = build_trainer(problem, settings)
    train_data = jax.tree.map(jnp.asarray, problem.train_data)
    valid_data = jax.tree.map(jnp.asarray, problem.valid_data)

    def train_fn(config, key):
        params, orders = trainer.init(key), trainer.orders(key)
        return trainer.run(config, params, orders, train_data, valid_data)

    return train_fn
