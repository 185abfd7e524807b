"""Running a stateful transformation over a sequence of gradients, for the tests."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def run_updates(tx, grads, dtype=jnp.float32):
    """`tx`'s update for each row of `grads` in turn (float64), and the last state.

    The parameters are zeros of `grads.shape[1]`, in `dtype`; each gradient is
    cast to `dtype` before its update.
    """
    state = tx.init(jnp.zeros(grads.shape[1], dtype))
    out = []
    for g in grads:
        u, state = tx.update(jnp.asarray(g, dtype), state)
        out.append(np.asarray(u, np.float64))
    return np.array(out), state
