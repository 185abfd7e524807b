"""Flax NNX models for the gradtransforms examples (MLP, residual MLP, CNN, ...).

Every model takes `rngs: nnx.Rngs` keyword-only, `dtype`/`param_dtype`, and
initialisers with the `jax.nn.initializers` signature; BatchNorm models switch
between minibatch and running statistics with `.train()` / `.eval()`.
`ResidualMLP` adds skip connections (§8.7.5) and `greedy_pretrain` builds a
deep MLP layer by layer (§8.7.4); `LinearClassifier` is softmax regression,
and `CNN` also takes 1-D sequences (the MNIST-1D CNN). `models.data` loads
the data sets of the examples.
"""

from gradtransforms.models.cnn import CNN
from gradtransforms.models.data import DataError, DataSplit, load_digits, load_npz
from gradtransforms.models.deep_linear import DeepLinear
from gradtransforms.models.linear import LinearClassifier
from gradtransforms.models.mlp import MLP
from gradtransforms.models.pretraining import (
    PretrainResult,
    cross_entropy,
    fit,
    greedy_pretrain,
)
from gradtransforms.models.residual import ResidualMLP

__all__ = [
    "CNN",
    "MLP",
    "DataError",
    "DataSplit",
    "DeepLinear",
    "LinearClassifier",
    "PretrainResult",
    "ResidualMLP",
    "cross_entropy",
    "fit",
    "greedy_pretrain",
    "load_digits",
    "load_npz",
]
