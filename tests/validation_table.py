"""Every public constructor, with the domain of each argument (issue 18).

`TABLE` maps a public name to an `Entry` (tests/validation_domains.py): how a
built object is used, the valid arguments it is called with (`arg=value`),
and the domain of each fuzzed argument (`arg:DOMAIN`, or a group of them).
Each domain is read from the constructor's docstring, or, for a shared
argument, from the docstrings of the functions sharing it; a domain's
bounds (`DURATION`: any int count up to 2**63 - 1) from the guides.
`NOT_CONSTRUCTORS` lists the public callables that build nothing to check.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import gradtransforms as gt
import gradtransforms.models
from tests import validation_domains as vd
from tests.validation_domains import (
    I32,
    I64,
    INF,
    Anything,
    Category,
    Choice,
    Dtype,
    Either,
    Flag,
    Func,
    Int,
    Key,
    LearningRate,
    Map,
    Real,
    Seq,
    Tx,
    parse_table,
)

SCHEDULE = gt.constant_schedule(0.1)
GAIN = Choice(("linear", "identity", "sigmoid", "tanh", "relu", "leaky_relu"))
GAIN = GAIN._replace(options=(*GAIN.options, "selu", "gelu"))
SGD = gt.sgd(0.1)
KEY = jax.random.key(0)


def _int_jax(v):
    return isinstance(v, jax.Array) and jnp.issubdtype(v.dtype, jnp.integer)


class OneOrEach(Seq):
    """One value for all (of `item`), or a list or tuple of them: a CNN's
    per-block and per-axis sizes. A Seq: fuzzed like one, never probed."""

    def allows(self, v):
        return (
            Seq.allows(self, v) if isinstance(v, list | tuple) else self.item.allows(v)
        )


def _scalar(v):
    """Judged: anything but a container or an array of bounds, which may be a
    tree like the params, checked at init against them."""
    if isinstance(v, (list, tuple, dict)):
        return False
    return np.ndim(v) == 0 if isinstance(v, (np.ndarray, jax.Array)) else True


class OneOrEachOrNone(OneOrEach):
    def allows(self, v):
        return True if v is None else OneOrEach.allows(self, v)


NAMES = {k: v for k, v in vars(vd).items() if k.isupper()}
NAMES |= {
    "gt": gt,
    "models": gradtransforms.models,
    "SCHEDULE": SCHEDULE,
    "SCHEDULES": [SCHEDULE, SCHEDULE],
    "SGD": SGD,
    "SGD_FACTORY": gt.sgd,
    "LABELLED_SGD": {"x": SGD},
    "KEY": KEY,
    "DIFFICULTY": jnp.arange(5.0),
    "DATA": {"x": jnp.zeros(4)},
    "ROSENBROCK": gt.problems.rosenbrock,
    "ZEROS": jnp.zeros(2),
    "SAME": [lambda p: p],
    "LABELS": lambda params: jax.tree.map(lambda _: "x", params),
    "SPACE": {"lr": gt.tuning.log_uniform(1e-3, 1.0)},
    "PROBLEM": gt.tuning.Problem(
        lambda key: {"w": jnp.zeros(2)},
        lambda p, batch: jnp.sum(p["w"] ** 2),
        {"x": jnp.zeros((4, 2))},
    ),
    "HYPERPARAMS": {"learning_rate": "lr"},
    "TX": Tx(),
    "TX_OR_NONE": Tx(none=True),
    "INIT_FN": Func(jax.nn.initializers.zeros),
    "ACTIVATION": Func(jax.nn.relu),
    "SCHEDULE_FN": Func(SCHEDULE),
    "OBJECTIVE": Func(gt.problems.rosenbrock),
    "FACTORY": Func(gt.sgd),
    "KEY_ONLY": Key(),
    "SEEDED": Key(seed=True),
    "POSINT_OR_NONE": Int(none=True),
    "EVEN": Int(step=2),
    "DURATION": Int(1, I64),  # the schedules that count in floating point
    "LOW_INT": Int(-I32 - 1, 9),
    "HIGH_INT": Int(1, I32),
    "FINITE_OR_NONE": Real(none=True),
    "MOMENTUM": Real(0.0, 1.0, (True, False), none=True),
    "SIGMA": Real(0.0, INF, (True, False), schedule=True),
    "LBFGS_RATE": LearningRate(Real(0.0, none=True, schedule=True)),
    "UP_TO_INF": Real(0.0, INF, (False, True)),  # > 0, inf allowed
    "STEP_OR_NONE": Real(0.0, INF, (False, True), none=True),
    "NONNEG_OR_NONE": Real(0.0, INF, (True, False), none=True),
    "GROWTH": Real(1.0, INF, (True, True)),  # 1, > 1, or inf
    "CURVATURE": Real(1e-4, 1.0, also=(INF,)),  # (slope_rtol, 1) or inf
    "FRACTION_OR_NONE": Real(0.0, 1.0, none=True),
    "FRACTION": Real(0.0, 1.0, (True, True), shape="python"),  # fixes a shape
    "LEVEL": Real(0.0, 1.0, (True, True), shape="0d"),  # a scalar array too
    "PACING": Real(0.0, 1.0, (True, True), shape="0d", schedule=True),
    "SLOPE": Real(none=True, shape="python"),
    "GAIN_OR_NAME": Either(Real(0.0, shape="python"), GAIN),
    "TOL": Real(0.0, INF, (True, False), shape="0d"),
    # lbfgs_b's bounds: numbers are checked when it is built, trees at init.
    "BOUND": Real(-INF, INF, (True, True), none=True, judged=_scalar),
    "NO_AUX": Flag(judged=(False,)),  # True needs a function returning aux
    "BELOW_CURV": Real(0.0, 0.9),  # slope_rtol < curv_rtol = 0.9
    # 0-d int32 JAX arrays meet Python floats at construction (strict
    # promotion rejects that): not judged, see tests/test_validation_fuzz.py.
    "STABILISER": Real(0.0, INF, (True, False), judged=lambda v: not _int_jax(v)),
    "BELOW_2": Real(-INF, 2.0),
    "ABOVE_MINUS_2": Real(-2.0),
    "LOG_LOW": Real(0.0, 1.0, shape="python"),
    "LOG_HIGH": Real(1e-3, shape="python"),
    "UNIFORM_LOW": Real(-INF, 1.0, shape="python"),
    "UNIFORM_HIGH": Real(0.0, shape="python"),
    "SCALE_OR_NONE": Real(0.0, none=True, shape="python"),
    "BATCH_OR_NONE": Int(1, 4, none=True),  # at most the 4 examples of PROBLEM
    "INEXACT": Dtype(inexact=True),  # jax.nn.initializers take complex too
    "MOMENT_DT": Dtype(inexact=True),  # complex moments, for complex parameters
    "FLOAT": Dtype(optional=False),
    "FEATURES": Seq(Int(), 3, 2),
    "CHANNELS": Seq(Int(), 2),
    # CNN(channels=(2,)): one block, two spatial axes
    "PER_BLOCK": OneOrEach(Int(), 3, max_len=1),
    "SPATIAL_SIZE": OneOrEachOrNone(Int(), 6, min_len=2, max_len=2),
    "SPATIAL_DIMS": Int(1, 2),
    "PADDING": Either(Int(0), Choice(("SAME", "VALID"))),
    "HEAD": Choice(("mean", "flatten")),
    # as many as schedules, less one
    "BOUNDARIES": Seq(Int(), 5, max_len=1, arrays=True),
    "SCHEDULE_LIST": Seq(Func(SCHEDULE), SCHEDULE, 2, max_len=2),
    "FREQUENCIES": Seq(Real(0.0, shape="0d"), 1.0, arrays=True),
    "CHOICES": Seq(Category(), 0.5, distinct=True),
    "EVERY_K": Either(Int(), Func(lambda step: 2)),
    "STEPS_TO_SCALES": Map(Int(0), vd.NONNEG, 5, 0.5, none=True, empty=True),
    "LABELLED_TXS": Map(Anything(), Tx(), "x", SGD),
    "ORDER": Choice(("cyclic", "random")),
    "VARIANT": Choice(("polak_ribiere", "fletcher_reeves", "hestenes_stiefel")),
    "GUESS": Choice(("one", "keep", "quadratic")),
    "MODE": Choice(("min", "max")),
    "FAN": Choice(("fan_in", "fan_out", "fan_avg", "fan_geo_avg")),
    "DISTRIBUTION": Choice(("truncated_normal", "normal", "uniform")),
    "GAIN": GAIN,
}

# In the groups of Adam, RMSProp and AdaGrad, eps_root=1e-8 in the base arguments
# lets eps be 0 (eps = eps_root = 0 is not allowed: 0/0).
NAMES |= parse_table(
    """
ADAM_MOMENTS group eps_root=1e-8 b1:UNIT b2:UNIT eps:NONNEG eps_root:NONNEG
    mu_dtype:MOMENT_DT nesterov:FLAG nu_dtype:MOMENT_DT
ADAM group learning_rate:LR ADAM_MOMENTS
RMS group eps_root=1e-8 decay:UNIT eps:STABILISER initial_scale:NONNEG
    eps_in_sqrt:FLAG bias_correction:FLAG centered:FLAG eps_root:STABILISER
    accumulator_dtype:MOMENT_DT
RSS group eps_root=1e-8 initial_accumulator_value:NONNEG eps:NONNEG eps_root:NONNEG
    eps_in_sqrt:FLAG accumulator_dtype:MOMENT_DT
NEWTON group damping:NONNEG damping_increase:FACTOR damping_decrease:FACTOR
    accept_ratio:OPEN01 max_damping_steps:POSINT has_aux:FLAG
NEWTON_CG group cg_tol:FRACTION_OR_NONE max_cg_steps:POSINT_OR_NONE
CG group variant:VARIANT restart_every:POSINT_OR_NONE
SEARCH group linesearch:LINESEARCH has_aux:FLAG
ZOOM group max_linesearch_steps:POSINT max_learning_rate:STEP_OR_NONE tol:NONNEG
    increase_factor:FACTOR slope_rtol:BELOW_CURV curv_rtol:CURVATURE
    approx_dec_rtol:NONNEG_OR_NONE stepsize_precision:NONNEG
    initial_guess_strategy:GUESS verbose:FLAG has_aux:FLAG
BACKTRACK group max_backtracking_steps:POSINT slope_rtol:UNIT
    decrease_factor:OPEN01 increase_factor:GROWTH max_learning_rate:UP_TO_INF
    atol:NONNEG rtol:NONNEG store_grad:FLAG verbose:FLAG has_aux:FLAG
AXES3 group in_axis:AXES out_axis:AXES batch_axis:AXES dtype:INEXACT
MODEL group kernel_init:INIT_FN activation:ACTIVATION batch_norm:FLAG dtype:DT
    batch_norm_momentum:UNIT batch_norm_epsilon:POS param_dtype:FLOAT -rngs
TRAIN group -problem -optimizer -hyperparams -optimizer_kwargs -static_args
    -init_scale
""",
    NAMES,
)

TABLE = parse_table(
    """
gt.accumulate_gradients tx tx=SGD every_k_steps=2 tx:TX every_k_steps:EVERY_K
    accumulator_dtype:DT
gt.adagrad tx learning_rate=0.1 learning_rate:LR RSS
gt.adam tx ADAM
gt.adamw tx ADAM weight_decay:NONNEG -mask
gt.add_decayed_weights tx weight_decay:NONNEG -mask
gt.add_noise tx eta=0.1 gamma=0.55 eta:NONNEG gamma:NONNEG key:SEEDED
gt.apply_if_finite tx inner=SGD inner:TX max_consecutive_errors:POSINT_OR_NONE
gt.bfgs tx SEARCH
gt.block_coordinate_descent tx inner=SGD param_labels=LABELS inner:TX order:ORDER
    steps_per_block:POSINT seed:SEED -param_labels -blocks
gt.chain tx *transforms:TX
gt.clip tx max_delta=1.0 max_delta:POS
gt.clip_by_global_norm tx max_norm=1.0 max_norm:POS
gt.clip_by_norm tx max_norm=1.0 max_norm:POS
gt.conjugate_gradient tx CG SEARCH
gt.diagnostics.monitor tx inner:TX_OR_NONE
gt.ema tx decay=0.9 decay:UNIT debias:FLAG accumulator_dtype:MOMENT_DT
gt.ema_average tx decay=0.9 decay:UNIT debias:FLAG start_step:NNINT
    accumulator_dtype:MOMENT_DT
gt.identity tx
gt.inject_hyperparams factory inner_factory=SGD_FACTORY inner_factory:FACTORY
    hyperparam_dtype:DT -static_args
gt.lbfgs tx learning_rate:LBFGS_RATE memory_size:POSINT scale_init_precond:FLAG
    SEARCH
gt.lbfgs_b tx lower:BOUND upper:BOUND memory_size:POSINT
    max_linesearch_steps:POSINT has_aux:FLAG
gt.master_weights tx inner=SGD inner:TX dtype:FLOAT
gt.masked tx inner=SGD mask={"w":True,"b":False} inner:TX -mask
gt.newton tx NEWTON
gt.newton_cg tx NEWTON_CG SEARCH
gt.partition tx transforms=LABELLED_SGD param_labels=LABELS transforms:LABELLED_TXS
    -param_labels
gt.polyak_average tx start_step:NNINT accumulator_dtype:MOMENT_DT
gt.rmsprop tx learning_rate=0.1 momentum=0.9 learning_rate:LR RMS
    momentum:MOMENTUM nesterov:FLAG
gt.scale tx step_size=-0.1 step_size:FINITE
gt.scale_by_adam tx ADAM_MOMENTS
gt.scale_by_backtracking_linesearch tx BACKTRACK
gt.scale_by_bfgs tx
gt.scale_by_conjugate_gradient tx CG
gt.scale_by_damped_newton tx NEWTON
gt.scale_by_lbfgs tx memory_size:POSINT scale_init_precond:FLAG
gt.scale_by_learning_rate tx learning_rate=0.1 learning_rate:LR flip_sign:FLAG
gt.scale_by_newton_cg tx NEWTON_CG has_aux:FLAG
gt.scale_by_quadratic_linesearch tx has_aux:FLAG
gt.scale_by_rms tx RMS
gt.scale_by_rss tx RSS
gt.scale_by_schedule tx step_size_fn=SCHEDULE step_size_fn:SCHEDULE_FN
gt.scale_by_zoom_linesearch tx ZOOM
gt.set_to_zero tx
gt.sgd tx learning_rate=0.1 momentum=0.9 learning_rate:LR momentum:MOMENTUM
    nesterov:FLAG accumulator_dtype:MOMENT_DT
gt.smooth_gradient tx sigma=0.1 sigma:SIGMA num_samples:EVEN key:SEEDED
    antithetic:FLAG
gt.trace tx decay=0.9 decay:UNIT nesterov:FLAG accumulator_dtype:MOMENT_DT
gt.zero_nans tx
gt.constant_schedule schedule value=0.1 value:FINITE
gt.cosine_decay_schedule schedule init_value=1.0 decay_steps=10 init_value:FINITE
    decay_steps:DURATION alpha:NONNEG exponent:POS
gt.exponential_decay schedule init_value=1.0 transition_steps=10 decay_rate=0.5
    init_value:FINITE transition_steps:POSINT decay_rate:POS transition_begin:NNINT
    staircase:FLAG end_value:FINITE_OR_NONE
gt.join_schedules schedule schedules=SCHEDULES boundaries=[5]
    schedules:SCHEDULE_LIST boundaries:BOUNDARIES
gt.linear_decay_schedule schedule init_value=1.0 end_value=0.0 transition_steps=10
    init_value:FINITE end_value:FINITE transition_steps:DURATION
    transition_begin:NNINT
gt.piecewise_constant_schedule schedule init_value=1.0 init_value:FINITE
    boundaries_and_scales:STEPS_TO_SCALES
gt.warmup_cosine_decay_schedule schedule init_value=0.0 peak_value=1.0
    warmup_steps=0 decay_steps=1099511627776 init_value:FINITE peak_value:FINITE
    warmup_steps:NNINT decay_steps:DURATION end_value:FINITE exponent:POS
gt.alternating_minimization - block_minimizers=SAME init_params=0.0
    num_sweeps:POSINT eager -block_minimizers -init_params
gt.minimize - fun=ROSENBROCK init_params=ZEROS optimizer=SGD max_steps=2 tol=0.0
    fun:OBJECTIVE optimizer:TX max_steps:POSINT tol:TOL has_aux:NO_AUX ftol:TOL
    xtol:TOL eager
    -init_params
gt.training.curriculum_indices - key=KEY difficulty=DIFFICULTY batch_size=2
    level=0.5 key:KEY_ONLY batch_size:POSINT level:LEVEL
    hard_fraction:FRACTION eager -difficulty
gt.training.curriculum_sampler - difficulty=DIFFICULTY batch_size=2 pacing=0.5
    batch_size:POSINT pacing:PACING hard_fraction:FRACTION -difficulty
gt.training.early_stopping - patience=3 patience:POSINT min_delta:NONNEG
    mode:MODE keep_best_params:FLAG
gt.training.epoch_indices - key=KEY num_examples=8 batch_size=1
    drop_remainder=False key:KEY_ONLY
    num_examples:POSINT batch_size:POSINT drop_remainder:FLAG shuffle:FLAG eager
gt.training.minibatches - data=DATA batch_size=2 key=KEY batch_size:POSINT
    key:KEY_ONLY num_epochs:POSINT shuffle:FLAG drop_remainder:FLAG -data
gt.init.calculate_gain value nonlinearity="leaky_relu" nonlinearity:GAIN
    param:SLOPE
gt.init.constant init value=0.5 value:FINITE dtype:INEXACT
gt.init.delta_orthogonal - scale:NONNEG column_axis:AXIS dtype:INEXACT
gt.init.fan_in_bias_uniform init fan_in=4 fan_in:POSINT_OR_NONE dtype:FLOAT
gt.init.fan_in_uniform init dtype:FLOAT
gt.init.glorot_normal init AXES3
gt.init.glorot_uniform init AXES3
gt.init.he_normal init AXES3
gt.init.he_uniform init AXES3
gt.init.kaiming_normal init AXES3
gt.init.kaiming_uniform init AXES3
gt.init.lecun_normal init AXES3
gt.init.lecun_uniform init AXES3
gt.init.xavier_normal init AXES3
gt.init.xavier_uniform init AXES3
gt.init.normal init stddev:NONNEG dtype:INEXACT
gt.init.orthogonal init gain:GAIN_OR_NAME column_axis:AXIS dtype:FLOAT
gt.init.output_bias_from_marginals value class_frequencies=[1,2]
    class_frequencies:FREQUENCIES dtype:FLOAT
gt.init.sparse - num_nonzero=1 num_nonzero:POSINT stddev:POS dtype:FLOAT
gt.init.truncated_normal init stddev:NONNEG dtype:INEXACT lower:BELOW_2
    upper:ABOVE_MINUS_2
gt.init.uniform init scale:NONNEG dtype:INEXACT
gt.init.variance_scaling init scale=1.0 mode="fan_in" distribution="normal"
    scale:POS mode:FAN distribution:DISTRIBUTION AXES3
gt.tuning.choice dim values=[0.1] values:CHOICES
gt.tuning.grid value space=SPACE num=2 num:POSINT eager -space
gt.tuning.integer dim low=0 high=10 low:LOW_INT high:HIGH_INT
gt.tuning.log_uniform dim low=1e-3 high=1.0 low:LOG_LOW high:LOG_HIGH
gt.tuning.make_train_fn - problem=PROBLEM optimizer=SGD_FACTORY
    hyperparams=HYPERPARAMS num_epochs=1 num_epochs:POSINT
    batch_size:BATCH_OR_NONE eval_every:POSINT_OR_NONE TRAIN -num_steps
gt.tuning.random value space=SPACE n=2 key=KEY n:POSINT key:KEY_ONLY eager -space
gt.tuning.sweeper - problem=PROBLEM space=SPACE optimizer=SGD_FACTORY
    hyperparams=HYPERPARAMS num_epochs=1 key=KEY num_epochs:POSINT
    batch_size:BATCH_OR_NONE key:KEY_ONLY same_key:FLAG
    chunk_size:POSINT_OR_NONE keep_params:FLAG eval_every:POSINT_OR_NONE
    seeds:POSINT_OR_NONE TRAIN -space -static_dims -num_steps
gt.tuning.uniform dim low=0.0 high=1.0 low:UNIFORM_LOW high:UNIFORM_HIGH
gt.models.CNN cnn channels=(2,) num_classes:POSINT in_features:POSINT
    channels:CHANNELS kernel_size:PER_BLOCK bias_init:INIT_FN
    spatial_dims:SPATIAL_DIMS strides:PER_BLOCK padding:PADDING max_pool:FLAG
    head:HEAD input_size:SPATIAL_SIZE MODEL eager
gt.models.DeepLinear model depth=2 width=3 depth:POSINT width:POSINT
    in_features:POSINT_OR_NONE kernel_init:INIT_FN use_bias:FLAG dtype:DT
    param_dtype:FLOAT eager -rngs
gt.models.LinearClassifier model in_features=3 in_features:POSINT
    num_classes:POSINT kernel_init:INIT_FN bias_init:INIT_FN dtype:DT
    param_dtype:FLOAT eager -rngs
gt.models.MLP model features=(3,2) features:FEATURES bias_init:INIT_FN MODEL eager
gt.models.ResidualMLP model in_features=3 width=3 out_features=2 num_blocks=1
    in_features:POSINT width:POSINT out_features:POSINT num_blocks:POSINT
    residual_scale:SCALE_OR_NONE bias_init:INIT_FN MODEL eager
""",
    NAMES,
)

# Public callables that build nothing to check: they compute on the values
# they are given (their own modules' tests check those).
NOT_CONSTRUCTORS = {
    "gt.apply_updates": "adds updates to parameters",
    "gt.averaged_model": "reads a state",
    "gt.averaged_params": "reads a state",
    "gt.packed_layout": "a layout of given parameters",
    "gt.diagnostics.curvature": "maths on a function and parameters",
    "gt.diagnostics.hessian_vector_product": "maths on a function and parameters",
    "gt.diagnostics.lookup": "reads a state",
    "gt.diagnostics.optimal_step_size": "maths on given values",
    "gt.diagnostics.predicted_change": "maths on given values",
    "gt.init.lsuv": "rescales a given model on data",
    "gt.init.ones": "an initialiser, not a factory",
    "gt.init.zeros": "an initialiser, not a factory",
    "gt.tuning.best_so_far": "maths on given values",
    "gt.tuning.decode": "converts given configurations",
    "gt.tuning.encode": "converts given trials",
    "gt.tuning.mean_ci": "maths on given values",
    "gt.tuning.sweep": "runs a sweep; its keywords are sweeper's, checked there",
    "gt.tuning.tpe_search": "runs a search",
    "gt.models.cross_entropy": "a loss",
    "gt.models.fit": "trains a given model",
    "gt.models.greedy_pretrain": "trains models",
    "gt.models.load_digits": "loads data",
    "gt.models.load_npz": "loads data",
}
