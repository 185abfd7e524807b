"""Saving and restoring: bit-identical resume for every optimizer, any step type.

Every registry optimizer, plus averaging, `inject_hyperparams`, the noise
transformations (whose states hold PRNG keys) and the second-order methods
(whose states hold line-search brackets and curvature pairs), is run 4 steps
uninterrupted, and 2 steps, saved, restored into freshly initialised trees,
and run 2 more: the two runs must agree bit for bit.
"""

from __future__ import annotations

import re
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtransforms as gt
import gradtransforms.checkpoint as ckpt
from gradtransforms import second_order
from tests.checkpoint.common import bitwise_equal, make_params, stepper
from tests.registry import REGISTRY

EXTRAS = {
    "adam_polyak_ema": lambda: gt.chain(
        gt.adam(0.05), gt.polyak_average(start_step=1), gt.ema_average(0.9)
    ),
    "injected_adam": lambda: gt.inject_hyperparams(gt.adam)(
        learning_rate=gt.linear_decay_schedule(0.1, 0.01, 10), b1=0.8
    ),
    "guarded_adamw_masked": lambda: gt.apply_if_finite(
        gt.adamw(0.05, mask={"w": True, "b": False, "h": True})
    ),
    "add_noise": lambda: gt.chain(gt.add_noise(0.01, 0.55, key=3), gt.sgd(0.05)),
    "lbfgs": lambda: second_order.lbfgs(memory_size=3),
    "bfgs": lambda: second_order.bfgs(),
    "conjugate_gradient": lambda: second_order.conjugate_gradient(),
}
SECOND_ORDER = {"lbfgs", "bfgs", "conjugate_gradient"}
CASES = {e.name: e.build for e in REGISTRY} | EXTRAS
SLOW = {"bfgs", "conjugate_gradient"}  # long compiles; still run in CI

STEPS, SAVE_AT = 4, 2


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES],
)
def test_resume_is_bit_identical(name, tmp_path):
    tx = CASES[name]()
    step = stepper(tx, name in SECOND_ORDER)
    # BFGS cannot take mixed-dtype trees (it ravels them into one vector).
    h_dtype = jnp.float32 if name == "bfgs" else jnp.bfloat16
    params = make_params(h_dtype)
    state = tx.init(params)
    for _ in range(SAVE_AT):
        params, state = step(params, state)
    saved = ckpt.save(tmp_path / "ckpt", params, state, step=SAVE_AT, tx=tx)
    mid_params, mid_state = params, state
    for _ in range(STEPS - SAVE_AT):
        params, state = step(params, state)

    fresh = make_params(h_dtype)  # a new process would build these from scratch
    tx = CASES[name]()
    r_params, r_state, r_step = ckpt.restore(saved, fresh, tx.init(fresh), tx=tx)
    assert r_step == SAVE_AT
    bitwise_equal(r_params, mid_params)
    bitwise_equal(r_state, mid_state)
    step = stepper(tx, name in SECOND_ORDER)
    for _ in range(STEPS - SAVE_AT):
        r_params, r_state = step(r_params, r_state)
    bitwise_equal(r_params, params)
    bitwise_equal(r_state, state)
    chex.assert_tree_all_finite(r_params)


def test_restore_into_abstract_trees_from_eval_shape(tmp_path):
    tx = gt.adam(0.1)
    params = make_params()
    state = tx.init(params)
    ckpt.save(tmp_path / "c", params, state, step=7)
    params_like = jax.eval_shape(lambda: params)
    state_like = jax.eval_shape(tx.init, params_like)
    r_params, r_state, step = ckpt.restore(tmp_path / "c", params_like, state_like)
    assert step == 7
    bitwise_equal(r_params, params)
    bitwise_equal(r_state, state)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(r_state))


@pytest.mark.parametrize(
    "step",
    [3, np.int64(3), np.uint32(3), jnp.array(3, jnp.uint32), jnp.array(3), np.array(3)],
    ids=["int", "np.int64", "np.uint32", "jax_uint32", "jax_int32", "np_0d"],
)
def test_step_may_be_an_integer_scalar_of_any_kind(tmp_path, step):
    params = make_params()
    ckpt.save(tmp_path / "c", params, {}, step=step)
    restored = ckpt.restore(tmp_path / "c", params, {})[2]
    assert restored == 3 and type(restored) is int


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (1.5, TypeError),
        (True, TypeError),
        (jnp.array(1.0), TypeError),
        (jnp.arange(2), TypeError),
        ("3", TypeError),
        (-1, ValueError),
        (np.int32(-1), ValueError),
    ],
    ids=["float", "bool", "float_array", "vector", "str", "negative", "np_negative"],
)
def test_bad_steps_are_refused(tmp_path, step, error):
    with pytest.raises(error, match="step"):
        ckpt.save(tmp_path / "a", make_params(), {}, step=step)
    assert not (tmp_path / "a").exists()


def test_existing_checkpoint_needs_force(tmp_path):
    params = make_params()
    state = gt.sgd(0.1).init(params)
    ckpt.save(tmp_path / "a", params, state, step=1)
    with pytest.raises(ValueError, match="exist"):
        ckpt.save(tmp_path / "a", params, state, step=2)
    ckpt.save(tmp_path / "a", params, state, step=2, force=True)
    assert ckpt.restore(tmp_path / "a", params, state)[2] == 2


def test_the_scale_out_guides_checkpoint_snippets_run():
    """docs/guides/scale-out.md's Checkpoints section runs as written, in order."""
    page = Path(__file__).resolve().parents[2] / "docs" / "guides" / "scale-out.md"
    text = page.read_text(encoding="utf-8")
    section = text.split("\n## Checkpoints\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.M | re.S)
    assert len(blocks) == 3
    namespace: dict = {"__name__": "docs_scale_out_checkpoints"}
    for i, block in enumerate(blocks):
        exec(
            compile(block, f"scale-out.md Checkpoints (snippet {i + 1})", "exec"),
            namespace,
        )
