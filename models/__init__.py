"""Flax NNX models for the gradtransforms examples (MLP, CNN, deep linear net).

Every model takes `rngs: nnx.Rngs` keyword-only, `dtype`/`param_dtype`, and
initialisers with the `jax.nn.initializers` signature; BatchNorm models switch
between minibatch and running statistics with `.train()` / `.eval()`.
`models.data` loads the data sets of the examples.
"""

from models.cnn import CNN
from models.data import DataError, DataSplit, load_digits, load_npz
from models.deep_linear import DeepLinear
from models.mlp import MLP

__all__ = [
    "CNN",
    "MLP",
    "DataError",
    "DataSplit",
    "DeepLinear",
    "load_digits",
    "load_npz",
]
