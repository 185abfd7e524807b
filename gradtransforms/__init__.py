"""gradtransforms: composable, jit-compiled gradient transformations for JAX.

The optimization methods of Goodfellow, Bengio & Courville, *Deep Learning*,
chapter 8, as optax-compatible `(init, update)` pairs. One flat namespace:

    import gradtransforms as gt
    tx = gt.chain(gt.clip_by_global_norm(1.0), gt.adam(1e-3))
"""

from gradtransforms import diagnostics, init, training
from gradtransforms.averaging import (
    AverageState,
    averaged_model,
    averaged_params,
    ema_average,
    polyak_average,
)
from gradtransforms.base import (
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    Schedule,
    Updates,
    apply_updates,
    identity,
    set_to_zero,
)
from gradtransforms.clipping import (
    ApplyIfFiniteState,
    ClipByGlobalNormState,
    ZeroNansState,
    apply_if_finite,
    clip,
    clip_by_global_norm,
    clip_by_norm,
    zero_nans,
)
from gradtransforms.combine import (
    InjectHyperparamsState,
    chain,
    inject_hyperparams,
    masked,
    partition,
)
from gradtransforms.coordinate import (
    BlockCoordinateState,
    alternating_minimization,
    block_coordinate_descent,
)
from gradtransforms.optimizers import adagrad, adam, adamw, rmsprop, sgd
from gradtransforms.schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_decay_schedule,
    piecewise_constant_schedule,
    warmup_cosine_decay_schedule,
)
from gradtransforms.transforms import (
    AddDecayedWeightsState,
    EmaState,
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRssState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    ema,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    trace,
)

__version__ = "0.1.0"

__all__ = [
    "AddDecayedWeightsState",
    "ApplyIfFiniteState",
    "AverageState",
    "BlockCoordinateState",
    "ClipByGlobalNormState",
    "EmaState",
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "InjectHyperparamsState",
    "OptState",
    "Params",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "Schedule",
    "TraceState",
    "Updates",
    "ZeroNansState",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "alternating_minimization",
    "apply_if_finite",
    "apply_updates",
    "averaged_model",
    "averaged_params",
    "block_coordinate_descent",
    "chain",
    "clip",
    "clip_by_global_norm",
    "clip_by_norm",
    "constant_schedule",
    "cosine_decay_schedule",
    "diagnostics",
    "ema",
    "ema_average",
    "exponential_decay",
    "identity",
    "init",
    "inject_hyperparams",
    "join_schedules",
    "linear_decay_schedule",
    "masked",
    "partition",
    "piecewise_constant_schedule",
    "polyak_average",
    "rmsprop",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "set_to_zero",
    "sgd",
    "trace",
    "training",
    "warmup_cosine_decay_schedule",
    "zero_nans",
]
