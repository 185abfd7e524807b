"""The steps that `benchmarks/optimizer_step.py` times, and what XLA made of them.

A step is a pair of closures `(run, block)` for `harness.time_in_turn`:
`run()` starts one step (parameters and state donated, updated in place),
`block()` waits for the steps started. Built here: one optimizer update
(`jax_step`, `torch_step`), a bandwidth reference (`add_step`) and whole
training steps of the BatchNorm MLP (`mlp_train_steps`); then the number of
fused loops of a compiled step and whether two are the same program
(`xla_loops`, `same_program`), XLA's peak memory for one (`peak_bytes`), and
first-call trace + compile times (`first_call`, `train_step_first_call`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtransforms as gt
from benchmarks.harness import timed

Step = tuple[Callable[[], None], Callable[[], None]]


def jax_step(tx, apply_updates, params, grads) -> tuple[Callable, Callable, Any]:
    """`(run, block)` of one donated, jitted update step; and the compiled step."""

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return apply_updates(p, u), s

    jitted = jax.jit(step, donate_argnums=(0, 1))
    box = [jax.tree.map(jnp.copy, params), tx.init(params)]
    compiled = jitted.lower(*box, grads).compile()

    def run():
        box[0], box[1] = compiled(box[0], box[1], grads)

    def block():
        jax.block_until_ready(box)

    return run, block, compiled


def torch_step(factory, params, grads) -> Step:
    """`(run, block)` of `torch.optim` stepping copies of the parameters."""
    import torch

    torch.manual_seed(0)
    ps = [
        torch.tensor(np.asarray(p), requires_grad=True) for p in jax.tree.leaves(params)
    ]
    for p, g in zip(ps, jax.tree.leaves(grads), strict=True):
        p.grad = torch.tensor(np.asarray(g))
    opt = factory(ps)

    def run():
        opt.step()

    return run, lambda: None


def add_step(size: int) -> Step:
    """A jitted, donated `x + y` over `size` float32s: 12 bytes a float."""
    add = jax.jit(lambda x, y: x + y, donate_argnums=0)
    box = [jnp.ones(size, jnp.float32)]
    y = jnp.ones(size, jnp.float32)

    def run():
        box[0] = add(box[0], y)

    return run, lambda: jax.block_until_ready(box)


def mlp_train_steps(make_gt_adam: Callable, make_optax_adam: Callable) -> dict:
    """Whole training steps of the BatchNorm MLP (forward, backward, Adam).

    Batches of 64 random inputs; parameters, state and batch statistics
    donated. `gt packed` reads its parameters with `layout.unpack` inside the
    loss, so its gradients come out packed.

    Returns:
      `{"gt": step, "gt packed": step, "optax": step}`, each `(run, block)`.
    """
    from flax import nnx

    from gradtransforms.models import MLP

    model = MLP((64, 128, 128, 10), batch_norm=True, rngs=nnx.Rngs(0))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    layout = gt.packed_layout(params)
    x = jax.random.normal(jax.random.key(1), (64, 64), jnp.float32)
    y = jnp.arange(64) % 10
    impls = {}
    variants = {
        "gt": (make_gt_adam(), gt.apply_updates, lambda p: p, params),
        "gt packed": (
            make_gt_adam(),
            gt.apply_updates,
            layout.unpack,
            layout.pack(params),
        ),
        "optax": (make_optax_adam(), optax.apply_updates, lambda p: p, params),
    }
    for name, (tx, apply_updates, unpack, p0) in variants.items():

        def loss_fn(p, stats, unpack=unpack):
            model = nnx.merge(graphdef, unpack(p), stats, copy=True)
            logits = model(x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, nnx.state(model, nnx.BatchStat)

        def step(p, s, stats, tx=tx, apply_updates=apply_updates, loss_fn=loss_fn):
            (_, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(p, stats)
            u, s = tx.update(g, s, p)
            return apply_updates(p, u), s, stats

        compiled = (
            jax.jit(step, donate_argnums=(0, 1, 2))
            .lower(p0, tx.init(p0), stats)
            .compile()
        )
        box = [jax.tree.map(jnp.copy, p0), tx.init(p0), jax.tree.map(jnp.copy, stats)]

        def run(box=box, compiled=compiled):
            box[:] = compiled(*box)

        impls[name] = (run, lambda box=box: jax.block_until_ready(box))
    return impls


def xla_loops(compiled) -> int:
    """The number of fused loops (kernels) in a compiled step's entry computation."""
    return _computations(compiled).split("\nENTRY ", 1)[1].count(" fusion(")


def same_program(a, b) -> bool:
    """Whether two compiled steps are the same HLO, source locations aside."""
    return _computations(a) == _computations(b)


def _computations(compiled) -> str:
    """A compiled module's computations, without metadata and source tables."""
    text = compiled.as_text()
    starts = [i for i in (text.find("\n%"), text.find("\nENTRY ")) if i >= 0]
    text = text[min(starts) :]
    return re.sub(r", metadata=\{[^}]*\}", "", text)


def peak_bytes(compiled) -> int:
    """XLA's peak memory: arguments + outputs - donated aliases + temporaries."""
    m = compiled.memory_analysis()
    return (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        - m.alias_size_in_bytes
        + m.temp_size_in_bytes
    )


def first_call(tx_factory, params, grads, apply_updates) -> float:
    """Seconds to trace and compile one update step (JAX's caches cleared)."""
    jax.clear_caches()
    tx = tx_factory()

    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return apply_updates(p, u), s

    def compile_step():
        jitted = jax.jit(step, donate_argnums=(0, 1))
        return jitted.lower(params, tx.init(params), grads).compile()

    return timed(compile_step)[1]


def train_step_first_call(make_adam: Callable, params: Any, packed: bool) -> float:
    """Trace + compile seconds of a toy loss, its gradient and an Adam step.

    The loss, sum(sin(w) * w) over the leaves, reads every parameter once.
    """
    jax.clear_caches()
    layout = gt.packed_layout(params)
    tx = make_adam()

    def loss(p):
        p = layout.unpack(p) if packed else p
        return sum(jnp.sum(jnp.sin(w) * w) for w in jax.tree.leaves(p))

    def step(p, s):
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return gt.apply_updates(p, u), s

    p = layout.pack(params) if packed else params

    def compile_step():
        return jax.jit(step, donate_argnums=(0, 1)).lower(p, tx.init(p)).compile()

    return timed(compile_step)[1]
