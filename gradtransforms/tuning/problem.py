"""What a sweep trains: `Problem`, its checks, and its functions in one form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

from gradtransforms.training.batches import count_examples
from gradtransforms.validation import check_bool

__all__ = ["Objective", "Problem", "check_problem", "objective"]


class Problem(NamedTuple):
    """What `sweep` trains: initial parameters, a loss, and the data.

    Without model state (`has_state=False`, the default) the functions are
    `init_fn(key) -> params`, `loss_fn(params, batch) -> scalar` and
    `metrics_fn(params, batch) -> {name: scalar}`.

    With `has_state=True` the model also has non-parameter state (BatchNorm
    running statistics, any Flax NNX variable that is not a `Param`), which
    training carries from step to step and every run starts afresh:
    `init_fn(key) -> (params, state)`,
    `loss_fn(params, state, batch) -> (loss, new_state)` (training mode) and
    `metrics_fn(params, state, batch) -> {name: scalar}` (evaluation mode).
    `Problem.from_nnx` builds these from a Flax NNX model.
    """

    init_fn: Callable[[jax.Array], Any]
    """`init_fn(key) -> params` (or `(params, state)`): the initial values.
    Traced under `jit`/`vmap`, or called once outside them when runs share a
    key."""
    loss_fn: Callable[..., Any]
    """`loss_fn(params, batch) -> scalar` (or `loss_fn(params, state, batch)
    -> (scalar, state)`): the mean loss of a batch, a pytree like
    `train_data` with `batch_size` examples."""
    train_data: Any
    """A pytree of arrays sharing their leading (example) axis."""
    valid_data: Any = None
    """Optional: the validation set, scored as the evaluation set `"valid"`."""
    metrics_fn: Callable[..., Mapping[str, jax.Array]] | None = None
    """Optional: `metrics_fn(params, batch) -> {name: scalar}` (or
    `metrics_fn(params, state, batch)`), scored on every evaluation set
    (default `{"loss": <the loss of the batch>}`)."""
    eval_data: Mapping[str, Any] | None = None
    """Optional: more evaluation sets, `{name: data}`; metric `m` of set `s`
    is reported as `"s_m"` (e.g. `{"test": (x, y)}` gives `"test_loss"`)."""
    has_state: bool = False
    """Whether the model has non-parameter state (see above)."""

    @classmethod
    def from_nnx(
        cls,
        model_fn: Callable[[Any], Any],
        loss_fn: Callable[[Any, Any], jax.Array],
        train_data: Any,
        valid_data: Any = None,
        *,
        metrics_fn: Callable[[Any, Any], Mapping[str, jax.Array]] | None = None,
        eval_data: Mapping[str, Any] | None = None,
    ) -> Problem:
        """A `Problem` that trains a Flax NNX model.

        The parameters are the model's `nnx.Param` variables; every other
        variable (BatchNorm's running mean and variance, RNG counters, any
        custom `nnx.Variable`) is the model state, carried through training
        and fresh in each run. The loss runs the model in training mode
        (`model.train()`: BatchNorm normalises by the minibatch's statistics
        and updates its running ones), the metrics in evaluation mode
        (`model.eval()`: the running statistics).

        Args:
          model_fn: `model_fn(rngs) -> nnx.Module`, the model's constructor,
            e.g. `lambda rngs: gt.models.MLP((64, 32, 10), rngs=rngs)`.
          loss_fn: `loss_fn(model, batch) -> scalar`.
          train_data: the training set, a pytree of arrays.
          valid_data: optional validation set.
          metrics_fn: `metrics_fn(model, batch) -> {name: scalar}`
            (default `{"loss": loss_fn(model, batch)}`).
          eval_data: optional more evaluation sets, `{name: data}`.

        Returns:
          A `Problem` with `has_state=True`.
        """
        from gradtransforms.tuning.nnx_problem import nnx_functions

        init, loss, metrics = nnx_functions(model_fn, loss_fn, metrics_fn)
        return cls(init, loss, train_data, valid_data, metrics, eval_data, True)


def check_problem(problem: Any) -> dict[str, Any]:
    """Check `problem`; return its evaluation sets, `{name: data}`."""
    if not isinstance(problem, Problem):
        raise TypeError(
            f"problem must be a gradtransforms.tuning.Problem; got {problem!r}."
        )
    for name in ("init_fn", "loss_fn"):
        if not callable(getattr(problem, name)):
            raise TypeError(f"problem.{name} must be callable.")
    if problem.metrics_fn is not None and not callable(problem.metrics_fn):
        raise TypeError("problem.metrics_fn must be callable or None.")
    check_bool("problem.has_state", problem.has_state)
    sets = {} if problem.valid_data is None else {"valid": problem.valid_data}
    if problem.eval_data is not None:
        if not isinstance(problem.eval_data, Mapping):
            raise TypeError(
                "problem.eval_data must be a dict {name: data}; got "
                f"{type(problem.eval_data).__name__}."
            )
        for name, data in problem.eval_data.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(
                    "problem.eval_data: names must be identifiers such as "
                    f"'test'; got {name!r}."
                )
            if name in sets:
                raise ValueError(
                    f"problem.eval_data names {name!r}, which valid_data "
                    "already is; give the validation set once."
                )
            sets[name] = data
    if problem.metrics_fn is not None and not sets:
        raise ValueError(
            "problem.metrics_fn needs problem.valid_data or problem.eval_data "
            "(a set to score it on)."
        )
    count_examples(problem.train_data)
    for data in sets.values():
        count_examples(data)
    return sets


class Objective(NamedTuple):
    """A problem's functions in the stateful form (state `()` when it has none)."""

    init: Callable[[jax.Array], tuple[Any, Any]]  # key -> (params, state)
    loss: Callable[[Any, Any, Any], tuple[jax.Array, Any]]  # -> (loss, state)
    metrics: Callable[[Any, Any, Any], Mapping[str, jax.Array]]


def objective(problem: Problem) -> Objective:
    """`problem`'s functions, each taking and giving the model state."""
    if problem.has_state:
        init, loss = problem.init_fn, problem.loss_fn
        metrics = problem.metrics_fn or (lambda p, s, b: {"loss": loss(p, s, b)[0]})
        return Objective(init, loss, metrics)
    plain_metrics = problem.metrics_fn or (lambda p, b: {"loss": problem.loss_fn(p, b)})
    return Objective(
        lambda key: (problem.init_fn(key), ()),
        lambda p, s, b: (problem.loss_fn(p, b), s),
        lambda p, s, b: plain_metrics(p, b),
    )
