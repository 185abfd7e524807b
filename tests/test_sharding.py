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
OPTIMIZERS = (
    "adam",
    "momentum",
    "adagrad",
    "rmsprop",
    "clipped_adam",
    "polyak",
    "accumulated_adam",
)
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
        # (the one-step checks compare the zero updates of a first microbatch)
        "accumulated_adam": lambda: gt.accumulate_gradients(gt.adam(0.01), 2),
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


def _loss(params):
    return sum(jnp.sum(0.5 * (x - 0.25) ** 2) for x in jax.tree.leaves(params))


def _value_step(tx):
    """A second-order step: the line search needs the value and `value_fn`."""

    def step(params, state, grads):
        del grads
        value, grad = jax.value_and_grad(_loss)(params)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=_loss
        )
        return gt.apply_updates(params, updates), state

    return step


def _non_canonical(mesh):
    """FSDP placements written differently from JAX's outputs' specs."""
    split, whole = (
        NamedSharding(mesh, PartitionSpec(*p)) for p in [("data", None), ()]
    )
    embed = NamedSharding(mesh, PartitionSpec("data"))
    return {"dense": {"kernel": split, "bias": whole}, "embed": embed, "scale": whole}


def _compile_once(tx, step, axis_type, pinned, host, grads_host):
    """Three calls of a jitted step: cache entries, and leaves whose output
    sharding is not the input's (exact `==`, spec spelling included)."""
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(axis_type,))
    params = jax.device_put(host, _non_canonical(mesh))
    if not pinned:  # placed by the helper, then a plain jit
        params = jax.device_put(params, gs.param_shardings(params))
    grads = jax.device_put(grads_host, gs.param_shardings(params))
    state = gs.init(tx, params)
    # pinned: any placement, out_shardings are the inputs' own
    layout = jax.tree.map(lambda x: x.sharding, (params, state))
    jitted = jax.jit(step, out_shardings=layout) if pinned else jax.jit(step)
    out = jitted(params, state, grads)
    compiled_out = jitted.lower(params, state, grads).compile().output_shardings
    for _ in range(2):
        out = jitted(*out, grads)
    moved = [
        jax.tree_util.keystr(path)
        for (path, a), b, c in zip(
            jax.tree_util.tree_leaves_with_path((params, state)),
            jax.tree.leaves(out),
            jax.tree.leaves(compiled_out),
            strict=True,
        )
        if not (a.sharding == b.sharding == c)
    ]
    leaves = jax.tree_util.tree_leaves_with_path(out[1])
    keys = [jax.tree_util.keystr(k) for k, _ in leaves]
    shards = [
        (str(x.sharding.spec), x.addressable_shards[0].data.shape) for _, x in leaves
    ]
    layout = {k: v for k, v in zip(keys, shards, strict=True) if v[1]}
    return {"cache_size": jitted._cache_size(), "moved": moved, "state_layout": layout}


SECOND_ORDER = {"lbfgs": lambda: gt.lbfgs(memory_size=3), "cg": gt.conjugate_gradient}
SECOND_ORDER["bfgs"] = gt.bfgs


def _compile_rows(host, grads_host):
    auto, explicit = jax.sharding.AxisType.Auto, jax.sharding.AxisType.Explicit
    for opt_name in OPTIMIZERS:
        tx = _build(opt_name)
        for axis_type in (auto, explicit):
            for pinned in (False, True):
                row = _compile_once(tx, _step(tx), axis_type, pinned, host, grads_host)
                yield {
                    "optimizer": opt_name,
                    "axes": str(axis_type),
                    "pinned": pinned,
                    **row,
                }
    for opt_name, build in SECOND_ORDER.items():
        tx = build()  # (on Auto axes: see docs/guides/scale-out.md)
        row = _compile_once(tx, _value_step(tx), auto, True, host, grads_host)
        yield {"optimizer": opt_name, "axes": str(auto), "pinned": True, **row}


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
    for row in _compile_rows(host, grads_host):
        print(json.dumps({"check": "compile", **row}, default=list), flush=True)


# --------------------------------------------------------------------------
# The tests (run in the pytest process)


@pytest.fixture(scope="module")
def worker_results():
    flags = f"--xla_force_host_platform_device_count={DEVICES}"
    proc = run_python([os.path.abspath(__file__)], xla_flags=flags, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [
        json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")
    ]
    return {
        (r["optimizer"], r["layout"])
        if "layout" in r
        else (r["optimizer"], r["axes"], r["pinned"]): r
        for r in rows
    }


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


@pytest.mark.parametrize("pinned", [False, True], ids=["placed", "pinned"])
@pytest.mark.parametrize("axes", ["AxisType.Auto", "AxisType.Explicit"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_step_compiles_once(worker_results, optimizer, axes, pinned):
    """Three calls, one cache entry: every output sharding `==` its input's,
    and the compiled step's `output_shardings` too. `placed`: parameters
    placed by `param_shardings`, plain `jax.jit`; `pinned`: the parameters'
    own (non-canonical) specs, `out_shardings` the inputs' shardings."""
    row = worker_results[(optimizer, axes, pinned)]
    assert row["moved"] == []
    assert row["cache_size"] == 1


@pytest.mark.parametrize("optimizer", sorted(SECOND_ORDER))
def test_second_order_state_sharded_and_compiled_once(worker_results, optimizer):
    """L-BFGS's memory is `P(None, *param_spec)`, CG's vectors are laid out
    like the parameters, BFGS's dense matrix is replicated."""
    row = worker_results[(optimizer, "AxisType.Auto", True)]
    assert row["moved"] == [] and row["cache_size"] == 1
    layout = row["state_layout"]
    if optimizer == "lbfgs":
        for field in ("s_memory", "y_memory"):
            split = ["P(None, 'data')", [3, 8, 16]]
            assert layout[f"[0].{field}['dense']['kernel']"] == split
            assert layout[f"[0].{field}['embed']"] == ["P(None, 'data')", [3, 4, 8]]
            assert layout[f"[0].{field}['dense']['bias']"] == ["P()", [3, 16]]
        assert layout["[0].prev_grad['dense']['kernel']"][1] == [8, 16]
    elif optimizer == "cg":
        for field in ("prev_grad", "prev_direction"):
            assert layout[f"[0].{field}['dense']['kernel']"] == ["P('data',)", [8, 16]]
    else:
        assert layout["[0].inv_hessian"] == ["P()", [1297, 1297]]


def test_canonical_spec_forms():
    """`canonical` spells a spec as JAX's outputs do, per mesh axis type."""
    auto, explicit = (
        jax.sharding.Mesh(np.array(jax.devices()[:1]), ("x",), axis_types=(kind,))
        for kind in (jax.sharding.AxisType.Auto, jax.sharding.AxisType.Explicit)
    )
    cases = [
        (auto, PartitionSpec("x", None), 2, PartitionSpec("x")),
        (
            auto,
            PartitionSpec(
                None,
            ),
            1,
            PartitionSpec(),
        ),
        (explicit, PartitionSpec(), 1, PartitionSpec(None)),
        (explicit, PartitionSpec("x"), 2, PartitionSpec("x", None)),
        (explicit, PartitionSpec(), 0, PartitionSpec()),
    ]
    for mesh, spec, ndim, want in cases:
        got = gs.canonical(NamedSharding(mesh, spec), ndim)
        assert got == NamedSharding(mesh, want), (spec, ndim, got)
    single = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    assert gs.canonical(single, 2) is single


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
