"""The textbook's first-order optimizers (Algorithms 8.1–8.7), each a short chain.

The maths lives in `transforms`; an optimizer is only a recipe. The learning
rate $\\varepsilon$ is a number or a schedule everywhere, and it scales the
gradient *before* any momentum accumulation, as in the textbook
($v \\leftarrow \\alpha v - \\varepsilon_k g$): under a schedule only new
contributions are scaled. optax's `sgd` and `torch.optim.SGD` apply the
learning rate after the momentum instead ($v \\leftarrow \\alpha v + g$,
$\\theta \\leftarrow \\theta - \\varepsilon_k v$), which rescales the whole
velocity when $\\varepsilon_k$ changes. With a constant rate the two agree.
"""

from __future__ import annotations

from typing import Any

from gradtransforms.adaptive import scale_by_adam, scale_by_rms, scale_by_rss
from gradtransforms.base import GradientTransformationExtraArgs
from gradtransforms.combine import chain
from gradtransforms.momentum import trace
from gradtransforms.scaling import add_decayed_weights, scale_by_learning_rate
from gradtransforms.validation import check_bool, check_unit_interval

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd"]


def _momentum(momentum: Any, nesterov: bool, accumulator_dtype: Any = None) -> list:
    check_bool("nesterov", nesterov)
    if momentum is None:
        if nesterov:
            raise ValueError("nesterov=True needs a momentum in [0, 1); got None.")
        return []
    check_unit_interval("momentum", momentum)
    return [trace(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)]


def sgd(
    learning_rate: Any,
    momentum: float | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    * `momentum=None`: Algorithm 8.1, $\\theta \\leftarrow \\theta -
      \\varepsilon_k g$.
    * `momentum=α`: Algorithm 8.2, $v \\leftarrow \\alpha v - \\varepsilon_k g$,
      $\\theta \\leftarrow \\theta + v$.
    * `nesterov=True`: Algorithm 8.3 in the look-ahead variables
      $\\varphi = \\theta + \\alpha v$ (see `trace`).

    `chain(scale_by_learning_rate(lr), trace(momentum, nesterov))`.

    Args:
      learning_rate: $\\varepsilon > 0$ or a schedule $\\varepsilon_k$.
      momentum: $\\alpha \\in [0, 1)$, or `None` for plain SGD.
      nesterov: use Nesterov momentum.
      accumulator_dtype: dtype of the velocity (default: the parameters').

    Returns:
      A `GradientTransformationExtraArgs`.

    Examples:
      >>> import gradtransforms as gt
      >>> tx = gt.sgd(gt.linear_decay_schedule(0.1, 0.001, 1000), momentum=0.9)
    """
    return chain(
        scale_by_learning_rate(learning_rate),
        *_momentum(momentum, nesterov, accumulator_dtype),
    )


def adagrad(
    learning_rate: Any,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-7,
    eps_root: float = 0.0,
    *,
    eps_in_sqrt: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    """AdaGrad (Algorithm 8.4): divide by the root of all squared gradients so far.

    $$r \\leftarrow r + g \\odot g, \\qquad \\Delta\\theta =
    -\\frac{\\varepsilon}{\\delta + \\sqrt{r}} \\odot g$$

    Defaults reproduce Algorithm 8.4: accumulator from 0, $\\delta = 10^{-7}$
    outside the root. optax's `adagrad` starts the accumulator at 0.1 and puts
    `eps` under the root: `adagrad(lr, 0.1, eps_in_sqrt=True)` is optax's.

    Args:
      learning_rate: $\\varepsilon > 0$ or a schedule.
      initial_accumulator_value: $r_0 \\ge 0$.
      eps: $\\delta \\ge 0$, added to the root, or under it with `eps_in_sqrt`.
      eps_root: added under the root, $\\ge 0$.
      eps_in_sqrt: put `eps` under the root, as optax's `adagrad` does.
      accumulator_dtype: dtype of $r$ (default: each parameter's
        accumulation dtype, float32 for 16-bit parameters; optax keeps $r$
        in the parameters' dtype).

    Returns:
      `chain(scale_by_rss(...), scale_by_learning_rate(learning_rate))`.
    """
    return chain(
        scale_by_rss(
            initial_accumulator_value,
            eps,
            eps_root,
            eps_in_sqrt=eps_in_sqrt,
            accumulator_dtype=accumulator_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate: Any,
    decay: float = 0.9,
    eps: float = 1e-6,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    eps_root: float = 0.0,
    accumulator_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    """RMSProp (Algorithm 8.5), with optional (Nesterov) momentum (Algorithm 8.6).

    $$r \\leftarrow \\rho r + (1-\\rho) |g|^2, \\qquad
    v \\leftarrow \\alpha v - \\varepsilon\\, \\frac{g}{\\sqrt{r + \\delta}},
    \\qquad \\theta \\leftarrow \\theta + v$$

    (without momentum, $\\theta \\leftarrow \\theta - \\varepsilon g /
    \\sqrt{r + \\delta}$). The arguments are optax's `rmsprop`'s, in its order
    and with its meaning: `eps` goes under the root, or outside it with
    `eps_in_sqrt=False`. The default $\\delta = 10^{-6}$ under the root
    reproduces Algorithm 8.5 (optax's default is $10^{-8}$); Algorithm 8.6 has
    no stabiliser, so its literal form is `eps` very small. The lecture slides
    put $\\delta$ outside the root (`eps=δ, eps_in_sqrt=False`).

    Args:
      learning_rate: $\\varepsilon > 0$ or a schedule.
      decay: $\\rho \\in [0, 1)$.
      eps: $\\delta \\ge 0$, under the root with `eps_in_sqrt`, else added to
        it.
      initial_scale: $r_0 \\ge 0$.
      eps_in_sqrt: put `eps` under the root (the default, as optax).
      centered: divide by the root of the variance instead of the second moment.
      momentum: $\\alpha \\in [0, 1)$ or `None`.
      nesterov: Nesterov momentum (Algorithm 8.6, in look-ahead variables).
      bias_correction: divide the moving averages by $1 - \\rho^t$.
      eps_root: $\\ge 0$, added under the root besides `eps`.
      accumulator_dtype: dtype of $r$ (and of the centred mean; default: each
        parameter's accumulation dtype, float32 for 16-bit parameters; optax
        keeps them in the parameters' dtype). The momentum's velocity stays
        in the parameters' dtype, as `trace`'s.

    Returns:
      `chain(scale_by_rms(...), scale_by_learning_rate(lr), trace(momentum))`.
    """
    return chain(
        scale_by_rms(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
            centered=centered,
            eps_root=eps_root,
            accumulator_dtype=accumulator_dtype,
        ),
        scale_by_learning_rate(learning_rate),
        *_momentum(momentum, nesterov),
    )


def adam(
    learning_rate: Any = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    """Adam (Algorithm 8.7); NAdam with `nesterov=True`.

    $$\\Delta\\theta = -\\varepsilon\\, \\frac{\\hat s}{\\sqrt{\\hat r +
    \\delta_\\text{root}} + \\delta}$$

    with the bias-corrected moments of `scale_by_adam`. Defaults reproduce
    Algorithm 8.7 ($\\varepsilon = 10^{-3}$, $\\rho_1 = 0.9$, $\\rho_2 =
    0.999$, $\\delta = 10^{-8}$) and equal optax's. (Trivedi & Kondor's
    slides title their Adam listing "RMSProp with Nesterov" and suggest
    $\\rho_2 = 0.9$, $\\delta = 10^{-4}$; the textbook's defaults stand: see
    "Misprints in the sources" in docs/textbook.md.)

    Args:
      learning_rate: $\\varepsilon > 0$ or a schedule.
      b1: $\\rho_1 \\in [0, 1)$.
      b2: $\\rho_2 \\in [0, 1)$.
      eps: $\\delta \\ge 0$, added to the root.
      eps_root: added under the root, $\\ge 0$.
      mu_dtype: dtype of the first moment (default: each parameter's
        accumulation dtype, float32 for 16-bit parameters; optax's default
        is the parameters' dtype).
      nesterov: NAdam's first moment.
      nu_dtype: dtype of the second moment (default: each parameter's
        accumulation dtype, whatever `mu_dtype` is).

    Returns:
      `chain(scale_by_adam(...), scale_by_learning_rate(learning_rate))`.

    Examples:
      >>> import gradtransforms as gt
      >>> tx = gt.adam(1e-3)
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: Any = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: float = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    $$\\Delta\\theta = -\\varepsilon\\left(\\frac{\\hat s}{\\sqrt{\\hat r +
    \\delta_\\text{root}} + \\delta} + \\lambda\\theta\\right)$$

    Same defaults as optax's `adamw` (`weight_decay=1e-4`).

    Args:
      learning_rate: $\\varepsilon > 0$ or a schedule.
      b1: $\\rho_1 \\in [0, 1)$.
      b2: $\\rho_2 \\in [0, 1)$.
      eps: $\\delta \\ge 0$, added to the root.
      eps_root: added under the root, $\\ge 0$.
      mu_dtype: dtype of the first moment (default: each parameter's
        accumulation dtype, float32 for 16-bit parameters).
      weight_decay: $\\lambda \\ge 0$.
      mask: pytree of bools (or callable) selecting the leaves to decay.
      nesterov: NAdam's first moment.
      nu_dtype: dtype of the second moment (default: each parameter's
        accumulation dtype, whatever `mu_dtype` is).

    Returns:
      `chain(scale_by_adam(...), add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate))`.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov, nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
