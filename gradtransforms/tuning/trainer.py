"""One training run as a pure function of a configuration, for `vmap`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtransforms.base import GradientTransformation, apply_updates
from gradtransforms.injection import inject_hyperparams
from gradtransforms.training.batches import count_examples, epoch_indices
from gradtransforms.tuning.problem import Problem, check_problem, objective
from gradtransforms.validation import check_positive_int

__all__ = [
    "Budget",
    "HyperparamSource",
    "Problem",
    "TrainSettings",
    "Trainer",
    "build_trainer",
    "check_hyperparams",
    "make_train_fn",
]


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


class Budget(NamedTuple):
    """How long a run trains and when it is scored, in minibatch steps."""

    num_steps: int  # steps in all
    eval_every: int  # steps between evaluations
    steps_per_epoch: int

    @property
    def eval_steps(self) -> np.ndarray:
        """The step count at each evaluation: every `eval_every`, and the last."""
        steps = np.arange(self.eval_every, self.num_steps + 1, self.eval_every)
        if self.num_steps % self.eval_every:
            steps = np.append(steps, self.num_steps)
        return steps

    def split(self, orders: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(num_epochs, steps, B)` orders -> whole periods and the remainder.

        The periods `(n, eval_every, B)` are scanned with an evaluation after
        each; the remainder `(r, B)`, `r < eval_every`, is one more (shorter)
        period when `r > 0`.
        """
        flat = orders.reshape(-1, orders.shape[-1])[: self.num_steps]
        whole = self.num_steps - self.num_steps % self.eval_every
        periods = flat[:whole].reshape(-1, self.eval_every, flat.shape[-1])
        return periods, flat[whole:]


class Trainer(NamedTuple):
    init: Callable[[jax.Array], tuple[Any, Any]]  # key -> (params, state)
    orders: Callable[[jax.Array], tuple[jax.Array, jax.Array]]
    run: Callable[..., tuple[dict[str, jax.Array], Any, Any]]
    budget: Budget


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
    num_epochs: int | None = None
    batch_size: int | None = None
    num_steps: int | None = None
    eval_every: int | None = None

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
        if (self.num_epochs is None) == (self.num_steps is None):
            raise TypeError(
                "give the budget as exactly one of num_epochs (passes over the "
                "training set) and num_steps (minibatch steps); got "
                f"num_epochs={self.num_epochs!r}, num_steps={self.num_steps!r}."
            )
        for name in ("num_epochs", "num_steps", "batch_size", "eval_every"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
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


def _budget(settings: TrainSettings, steps_per_epoch: int) -> Budget:
    """The settings' budget in steps; by default scored after each epoch."""
    if settings.num_epochs is not None:
        num_steps = settings.num_epochs * steps_per_epoch
    else:
        assert settings.num_steps is not None  # one of the two, checked
        num_steps = settings.num_steps
    every = min(settings.eval_every or steps_per_epoch, num_steps)
    return Budget(num_steps, every, steps_per_epoch)


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


def _evaluation(metrics_fn: Callable) -> Callable:
    """`evaluate(params, state, eval_sets) -> {"<set>_<name>": value}`."""

    def evaluate(params: Any, state: Any, eval_sets: Mapping[str, Any]) -> dict:
        out = {}
        for set_name, data in eval_sets.items():
            values = metrics_fn(params, state, data)
            if not isinstance(values, Mapping):
                raise TypeError(
                    "problem.metrics_fn must return a dict {name: scalar}; got "
                    f"{type(values).__name__}."
                )
            out.update({f"{set_name}_{k}": v for k, v in values.items()})
        return out

    return evaluate


def build_trainer(problem: Problem, settings: TrainSettings) -> Trainer:
    """Validate the problem once; return the pieces of a training run."""
    check_problem(problem)
    num_examples, batch_size, shuffle = _batching(problem, settings)
    budget = _budget(settings, num_examples // batch_size)
    num_epochs = -(-budget.num_steps // budget.steps_per_epoch)
    inject = inject_hyperparams(settings.optimizer, static_args=settings.static_args)
    fns = objective(problem)
    grad_fn = jax.value_and_grad(fns.loss, has_aux=True)
    evaluate = _evaluation(fns.metrics)

    def init(key):
        """The initial parameters and model state of a run with this key."""
        return fns.init(jax.random.split(key)[0])

    def orders(key):
        """The minibatch indices of a run: whole evaluation periods, remainder."""
        orders = _batch_orders(key, num_examples, batch_size, num_epochs, shuffle)
        return budget.split(orders)

    def run(config, params, state, orders, train_data, eval_sets):
        """One run from its initial values and minibatch orders."""
        if settings.init_scale is not None:
            scale = _lookup(config, settings.init_scale, "init_scale")
            params = _scale_weights(params, scale)
        tx = _optimizer_for(settings, inject, config)

        def step(carry, idx):
            params, state, opt_state = carry
            batch = jax.tree.map(lambda x: x[idx], train_data)
            (loss, state), grads = grad_fn(params, state, batch)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (apply_updates(params, updates), state, opt_state), loss

        def period(carry, idx):
            carry, losses = jax.lax.scan(step, carry, idx)
            out = {"train_loss": jnp.mean(losses)}
            return carry, {**out, **evaluate(carry[0], carry[1], eval_sets)}

        periods, remainder = orders
        carry, metrics = jax.lax.scan(period, (params, state, tx.init(params)), periods)
        if remainder.shape[0]:  # the budget is not a multiple of eval_every
            carry, last = period(carry, remainder)
            metrics = jax.tree.map(
                lambda m, x: jnp.concatenate([m, x[None]]), metrics, last
            )
        return metrics, carry[0], carry[1]

    return Trainer(init, orders, run, budget)


def make_train_fn(
    problem: Problem,
    *,
    optimizer: Callable[..., GradientTransformation],
    hyperparams: Mapping[str, HyperparamSource] | Sequence[str],
    optimizer_kwargs: Mapping[str, Any] | None = None,
    static_args: Iterable[str] = (),
    init_scale: str | None = None,
    num_epochs: int | None = None,
    batch_size: int | None = None,
    num_steps: int | None = None,
    eval_every: int | None = None,
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
    3. $T$ minibatch steps
       $\\theta \\leftarrow \\theta + u(\\nabla L_B(\\theta); h)$, $T$ =
       `num_epochs` times the steps per epoch, or `num_steps`; each epoch
       draws a fresh permutation (`gt.training.epoch_indices`, dropping the
       last incomplete batch; the full training set per step if
       `batch_size` is None), and a budget in steps that ends inside an
       epoch stops there;
    4. every `eval_every` steps (default: each epoch) and after the last
       step, the mean minibatch loss since the previous evaluation and
       `problem.metrics_fn` on every evaluation set.

    With model state (`problem.has_state`), the state starts from
    `problem.init_fn` in every run, the loss updates it at each step, and the
    metrics read it; `train_fn` then returns `(metrics, (params, state))`.
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
      num_epochs: passes over the training set, >= 1; or give `num_steps`.
      batch_size: examples per step, or None for full-batch steps.
      num_steps: minibatch steps in all, >= 1, instead of `num_epochs`.
      eval_every: steps between evaluations, >= 1 (default: one epoch's; at
        most `num_steps`).

    Returns:
      `train_fn(config, key)` returning `(metrics, params)`: `metrics` a dict
      of curves with one entry per evaluation (`"train_loss"`, then
      `"<set>_<name>"` for each metric of each evaluation set, e.g.
      `"valid_loss"`) and the final parameters.
    """
    settings = TrainSettings(
        optimizer=optimizer,
        hyperparams=hyperparams,
        optimizer_kwargs=optimizer_kwargs,
        static_args=static_args,
        init_scale=init_scale,
        num_epochs=num_epochs,
        batch_size=batch_size,
        num_steps=num_steps,
        eval_every=eval_every,
    )
    trainer = build_trainer(problem, settings)
    train_data = jax.tree.map(jnp.asarray, problem.train_data)
    eval_sets = jax.tree.map(jnp.asarray, check_problem(problem))

    def train_fn(config, key):
        (params, state), orders = trainer.init(key), trainer.orders(key)
        metrics, params, state = trainer.run(
            config, params, state, orders, train_data, eval_sets
        )
        return metrics, ((params, state) if problem.has_state else params)

    return train_fn
