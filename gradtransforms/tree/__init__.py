"""Tree maths for gradient transformations, written once (`gradtransforms.tree`).

Like `optax.tree`, every helper maps over pytrees with `jax.tree.map`, so
`None` leaves (and optax's `MaskedNode`) are empty subtrees that pass through
untouched; where a name is also in `optax.tree` it means the same thing.
What this module adds is precision: statistics and scalar factors are
computed in each leaf's *accumulation dtype* (float32 for bfloat16, float16
and float32 leaves, float64 for float64) and rounded once, back to the
leaf's own dtype. `map_widened` is that idiom as one function, and every
transformation of the library is written with it: nothing is silently
promoted, and a float64 parameter is never pushed through a float32 step.

Examples:
  >>> import jax.numpy as jnp
  >>> from gradtransforms import tree
  >>> m = tree.update_moment({"w": jnp.ones(2, jnp.bfloat16)},
  ...                        {"w": jnp.zeros(2, jnp.bfloat16)}, 0.999, 1)
  >>> m["w"].dtype  # 1 - 0.999 is computed in float32, stored in bfloat16
  dtype(bfloat16)
"""

from gradtransforms.tree.dtypes import (
    accumulation_dtype,
    accumulator_like,
    cast_like,
    full_like,
    map_widened,
    per_dtype,
    real_dtype,
    scalar_dtype,
    zeros_like,
)
from gradtransforms.tree.maths import (
    abs_sq,
    add_scale,
    all_finite,
    bias_correction,
    complement,
    global_norm,
    one_minus_power,
    overflow_safe_global_norm,
    ravel,
    scale,
    update_moment,
    update_moment_per_elem_norm,
    vdot,
)
from gradtransforms.tree.structure import (
    assert_same_shapes,
    assert_same_structure,
    assert_state_matches,
    assert_updates_match,
    find_states,
    first_difference,
    safe_increment,
    where,
)

__all__ = [
    "abs_sq",
    "accumulation_dtype",
    "accumulator_like",
    "add_scale",
    "all_finite",
    "assert_same_shapes",
    "assert_same_structure",
    "assert_state_matches",
    "assert_updates_match",
    "bias_correction",
    "cast_like",
    "complement",
    "find_states",
    "first_difference",
    "full_like",
    "global_norm",
    "map_widened",
    "one_minus_power",
    "overflow_safe_global_norm",
    "per_dtype",
    "ravel",
    "real_dtype",
    "safe_increment",
    "scalar_dtype",
    "scale",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
