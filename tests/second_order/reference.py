"""NumPy references for the second-order tests, written from the textbook.

`cg_numpy` is Algorithm 8.9 transcribed literally; `saddle` is a test
function with a saddle at the origin and minima in closed form.
"""

from __future__ import annotations

import numpy as np


def cg_numpy(a, b, x0, steps, variant):
    """Textbook Algorithm 8.9, literally, with the closed-form ε* (§8.6.2)."""
    x, g_prev, rho = x0.copy(), None, np.zeros_like(x0)
    iterates = []
    for t in range(steps):
        g = a @ x - b
        if t == 0:
            beta = 0.0
        elif variant == "polak_ribiere":
            beta = (g - g_prev) @ g / (g_prev @ g_prev)
        elif variant == "fletcher_reeves":
            beta = g @ g / (g_prev @ g_prev)
        else:  # Hestenes–Stiefel
            beta = (g - g_prev) @ g / ((g - g_prev) @ rho)
        rho = -g + beta * rho
        eps = -(g @ rho) / (rho @ a @ rho)
        x = x + eps * rho
        g_prev = g
        iterates.append(x.copy())
    return np.array(iterates)


def saddle(p):
    """x² − y² + (x⁴ + y⁴)/4: a saddle at 0, minima at (0, ±√2), f = −1."""
    x, y = p[0], p[1]
    return x**2 - y**2 + 0.25 * (x**4 + y**4)


def lbfgs_numpy(grad, x0, learning_rate, steps, memory_size, scale_init_precond):
    """L-BFGS with a fixed step: Nocedal & Wright Algorithms 7.4 and 7.5.

    Every pair is kept (the last `memory_size`); the recursion starts from
    $\\gamma I$ with $\\gamma = s^\\top y / y^\\top y$ of the newest pair
    (their eq. 7.20) and $\\min(1, 1/\\lVert g\\rVert)$ at the first step when
    `scale_init_precond`, from $I$ otherwise. Returns the iterates.
    """
    x, g, pairs, iterates = x0.copy(), grad(x0), [], []
    for t in range(steps):
        if not scale_init_precond:
            gamma = 1.0
        elif t == 0:
            gamma = min(1.0, 1.0 / np.linalg.norm(g))
        else:
            s, y = pairs[-1]
            gamma = s @ y / (y @ y)
        q, alphas = g.copy(), []
        for s, y in reversed(pairs):  # newest first
            alphas.append(s @ q / (y @ s))
            q = q - alphas[-1] * y
        r = gamma * q
        for (s, y), alpha in zip(pairs, reversed(alphas), strict=True):
            r = r + s * (alpha - y @ r / (y @ s))
        x_new = x - learning_rate * r
        g_new = grad(x_new)
        pairs = [*pairs, (x_new - x, g_new - g)][-memory_size:]
        x, g = x_new, g_new
        iterates.append(x.copy())
    return np.array(iterates)


def himmelblau_numpy(p):
    """Himmelblau's function and its gradient in closed form (four minima, f = 0)."""
    x, y = p
    a, b = x**2 + y - 11.0, x + y**2 - 7.0
    return a**2 + b**2, np.array([4 * x * a + 2 * b, 2 * a + 4 * y * b])
