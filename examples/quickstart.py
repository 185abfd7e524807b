"""Quick start: fit a small least-squares problem with each textbook optimizer.

Run from the repository root:  python -m examples.quickstart
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import gradtransforms as gt


def main() -> None:
    key_x, key_w = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key_x, (256, 8))
    w_true = jax.random.normal(key_w, (8,))
    y = x @ w_true

    def loss(params):
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    optimizers = {
        "sgd": gt.sgd(0.05),
        "momentum": gt.sgd(0.05, momentum=0.9),
        "nesterov": gt.sgd(0.05, momentum=0.9, nesterov=True),
        "adagrad": gt.adagrad(0.5),
        "rmsprop": gt.rmsprop(0.01),
        "adam": gt.adam(0.05),
    }
    print(f"{'optimizer':<10} {'loss after 200 steps':>22}")
    for name, tx in optimizers.items():
        params = {"w": jnp.zeros(8), "b": jnp.zeros(())}

        def step(carry, _, tx=tx):
            params, state = carry
            grads = jax.grad(loss)(params)
            updates, state = tx.update(grads, state, params)
            return (gt.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(
            jax.jit(step), (params, tx.init(params)), length=200
        )
        print(f"{name:<10} {float(loss(params)):>22.3e}")


if __name__ == "__main__":
    main()
