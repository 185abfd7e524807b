"""Optimizer state follows the parameters' shardings, on 8 simulated CPU devices.

`XLA_FLAGS=--xla_force_host_platform_device_count=8` must be set before JAX
starts, so the checks run in a subprocess: this file, run as a script
(`python tests/test_sharding.py`), is the worker; it prints one JSON line per
(optimizer, layout) and the tests assert on them. Layouts: data-parallel
(parameters replicated over the 8 devices) and FSDP-style (each large
parameter split along its first axis over a `Mesh` axis of 8 devices).
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import gradtransforms as gt
import gradtransforms.sharding as gs
from tests.subprocesses import run_python

DEVICES = 8
OPTIMIZERS = ("adam", "momentum", "adagrad", "rmsprop", "clipped_adam", "polyak")
LAYOUTS = ("data_parallel", "fsdp")


# --------------------------------------------------------------------------
# The worker (runs in the subprocess)


def _build(name):
    return {
        "adam": lambda: gt.adam(0.01),
        "momentum": lambda: gt.sgd(0.01, momentum=0.9),
        "adagrad": lambda: gt.adagrad(0.1),
        "rmsprop": lambda: gt.rmsprop(0.01, centered=True),
        "clipped_adam": lambda: gt.chain(gt.clip_by_global_norm(1.0), gt.adam(0.01)),
        "polyak": lambda: gt.chain(gt.sgd(0.01, momentum=0.9), gt.polyak_average()),
    }[name]()


def _host_trees():
    """The parameters and the gradients, float32 NumPy trees."""
    rng = np.random.default_rng(0)
    host = {
        "dense": {"kernel": rng.standard_normal((64, 16)), "bias": np.zeros(16)},
        "embed": rng.standard_normal((32, 8)),
        "scale": np.array(1.5),
    }
    host = jax.tree.map(lambda x: np.asarray(x, np.float32), host)
    return host, jax.tree.map(lambda x: np.cos(x) + 0.1, host)


def _parameter_shardings(mesh, layout_name, host):
    """Replicated, or (FSDP) large leaves split along their first axis."""

    def one(x):
        split = x.ndim and x.shape[0] % DEVICES == 0 and x.size >= 64
        if layout_name == "fsdp" and split:
            return NamedSharding(mesh, PartitionSpec("data"))
        return NamedSharding(mesh, PartitionSpec())

    return jax.tree.map(one, host)


def _check_helper(tx, params, host, p_shard, failures):
    """`state_shardings` and `eval_shape` on concrete and abstract parameters."""
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        host,
        p_shard,
    )
    shardings = gs.state_shardings(tx, params)
    if jax.tree.structure(shardings) != jax.tree.structure(
        gs.state_shardings(tx, abstract)
    ) or jax.tree.leaves(shardings) != jax.tree.leaves(
        gs.state_shardings(tx, abstract)
    ):
        failures.append("abstract and concrete params give other shardings")
    abstract_state = jax.eval_shape(tx.init, abstract)
    if jax.tree.structure(abstract_state) != jax.tree.structure(
        jax.eval_shape(tx.init, host)
    ):
        failures.append("eval_shape on ShapeDtypeStruct params differs")
    return shardings


def _check_like_params(state, what, params, replicated, failures):
    """Each state leaf sharded like the parameter of its shape; returns a count."""
    checked = 0
    flat = dict(
        (jax.tree_util.keystr(p), x)
        for p, x in jax.tree_util.tree_leaves_with_path(params)
    )
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        key = jax.tree_util.keystr(path)
        owner = next(
            (k for k in flat if key.endswith(k) and flat[k].shape == leaf.shape),
            None,
        )
        want = flat[owner].sharding if owner else replicated
        if not leaf.sharding.is_equivalent_to(want, leaf.ndim):
            failures.append(f"{what}: {key} has {leaf.sharding}, not {want}")
        if owner:
            checked += 1
            local = leaf.addressable_shards[0].data.shape
            if local != flat[owner].addressable_shards[0].data.shape:
                failures.append(f"{what}: {key} local shard {local}")
    return checked


def _step(tx):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return gt.apply_updates(params, updates), state

    return step


def _max_abs_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _check_layout(tx, mesh, layout_name, host, grads_host, p_ref):
    """One (optimizer, layout) row: the checks' failures and the step's HLO."""
    replicated = NamedSharding(mesh, PartitionSpec())
    p_shard = _parameter_shardings(mesh, layout_name, host)
    params = jax.device_put(host, p_shard)
    grads = jax.device_put(grads_host, p_shard)
    failures = []

    # 1. The helper, on concrete and on abstract parameters.
    shardings = _check_helper(tx, params, host, p_shard, failures)

    # 2. State created sharded directly; each moment like its param.
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    checked = _check_like_params(state, "init", params, replicated, failures)

    # 3. Under jit, without out_shardings, the updated state keeps the
    # layout, and the step compiles without any all-gather.
    lowered = jax.jit(_step(tx), donate_argnums=(1,)).lower(params, state, grads)
    compiled = lowered.compile()
    hlo = compiled.as_text()
    gathers = hlo.count("all-gather")
    new_params, new_state = compiled(params, state, grads)
    checked += _check_like_params(new_state, "update", params, replicated, failures)
    if jax.tree.leaves(
        jax.tree.map(
            lambda a, b: a.sharding.is_equivalent_to(b, a.ndim), new_params, p_shard
        )
    ).count(False):
        failures.append("parameters changed sharding")
    return {
        "failures": failures,
        "moments_checked": checked,
        "all_gathers": gathers,
        "all_reduces": hlo.count("all-reduce"),
        "max_abs_diff_vs_single_device": _max_abs_diff(new_params, p_ref),
    }


def _worker() -> None:
    assert jax.device_count() == DEVICES, jax.devices()
    mesh = jax.make_mesh((DEVICES,), ("data",))
    host, grads_host = _host_trees()
    for opt_name in OPTIMIZERS:
        tx = _build(opt_name)
        # Single-device reference.
        u0, _ = tx.update(grads_host, tx.init(host), host)
        p_ref = gt.apply_updates(host, u0)
        for layout_name in LAYOUTS:
            row = _check_layout(tx, mesh, layout_name, host, grads_host, p_ref)
            row = {"optimizer": opt_name, "layout": layout_name, **row}
            print(json.dumps(row), flush=True)


# --------------------------------------------------------------------------
# The tests (run in the pytest process)


@pytest.fixture(scope="module")
def worker_results():
    flags = f"--xla_force_host_platform_device_count={DEVICES}"
    proc = run_python([os.path.abspath(__file__)], xla_flags=flags, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [
        json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")
    ]
    return {(r["optimizer"], r["layout"]): r for r in rows}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_state_follows_parameter_sharding(worker_results, optimizer, layout):
    row = worker_results[(optimizer, layout)]
    assert row["failures"] == []
    assert row["moments_checked"] > 0
    assert row["all_gathers"] == 0, "the optimizer step gathered a sharded array"
    assert row["max_abs_diff_vs_single_device"] < 1e-5


def test_only_global_norm_clipping_communicates(worker_results):
    """Element-wise optimizers need no collective at all in FSDP layout; the
    global norm is one all-reduce of a scalar per step."""
    for name in OPTIMIZERS:
        reduces = worker_results[(name, "fsdp")]["all_reduces"]
        if name == "clipped_adam":
            assert reduces >= 1
        else:
            assert reduces == 0, name


def test_state_shardings_on_one_device():
    """Without a mesh (the usual single-device case) the helper still works."""
    params = {"w": jnp.ones((3, 2)), "b": None, "s": jnp.ones(())}
    tx = gt.chain(gt.clip_by_global_norm(1.0), gt.adam(0.1))
    shardings = gs.state_shardings(tx, params)
    state = gs.init(tx, params)
    assert jax.tree.structure(shardings) == jax.tree.structure(state)
    assert jax.tree.structure(state) == jax.tree.structure(tx.init(params))
    abstract = jax.eval_shape(lambda: params)
    assert jax.tree.leaves(gs.state_shardings(tx, abstract)) == jax.tree.leaves(
        shardings
    )


if __name__ == "__main__":
    _worker()
