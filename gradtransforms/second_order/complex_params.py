"""Complex parameters in the second-order methods: one convention, written once.

A complex parameter $z = x + iy$ is a point of $\\mathbb{R}^2$ per element,
and the objective $f$ is real. As in optax, the updates and the `grad`
argument a transformation receives are the *conjugate* of what `jax.grad`
returns, $\\partial f/\\partial x + i\\,\\partial f/\\partial y$ (the
steepest-ascent direction, to be added to the parameters), and the real
inner product of $\\mathbb{R}^{2n}$ is $\\operatorname{Re}\\langle u,
v\\rangle = \\operatorname{Re} \\sum \\bar u v$ (`real_vdot`). A line
search's state keeps $\\nabla f$ as `jax.value_and_grad` returns it (not
conjugated), so `optax.value_and_grad_from_state` stays a drop-in for
`jax.value_and_grad`. With real parameters all of this is the identity.

`lbfgs`, `conjugate_gradient` and the line searches take complex
parameters; `bfgs`, `newton` and `newton_cg`, which ravel the parameters into
a real matrix problem or differentiate the gradient, raise `TypeError` at
`init` (`reject_complex`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtransforms import tree as tu
from gradtransforms.tree.dtypes import leaf_dtype

__all__ = ["conj", "real_vdot", "reject_complex"]


def real_vdot(tree_x: Any, tree_y: Any, dtype: Any) -> jax.Array:
    """$\\operatorname{Re}\\sum \\bar x y$ over all leaves, in the real `dtype`."""
    return jnp.real(tu.vdot(tree_x, tree_y)).astype(dtype)


def conj(tree: Any) -> Any:
    """The complex conjugate of every complex leaf (real leaves as they are)."""

    def one(x: Any) -> Any:
        return jnp.conj(x) if jnp.iscomplexobj(x) else x

    return jax.tree.map(one, tree)


def reject_complex(params: Any, method: str) -> None:
    """Raise `TypeError` naming `method` if any leaf of `params` is complex.

    `params` may hold arrays or `jax.ShapeDtypeStruct`s.
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = leaf_dtype(leaf)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"{method} does not support complex parameters; the leaf at "
                f"{jax.tree_util.keystr(path) or '<root>'} is {dtype}. Use lbfgs "
                "or conjugate_gradient, or optimise the real and imaginary parts "
                "as real parameters."
            )
