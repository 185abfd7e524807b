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
