"""Training-loop pieces: minibatches, early stopping and curriculum sampling.

Shuffled minibatches (§8.1.3), early stopping (§8.1.2) and a curriculum
sampler (§8.7.6). All are pure and deterministic: minibatch orders come from
a PRNG key, and early stopping is a state machine (`init`, `update`) whose
state is a `NamedTuple` of arrays, so they run inside `jit` and `lax.scan`.
"""

from gradtransforms.training.batches import epoch_indices, minibatches
from gradtransforms.training.curriculum import (
    CurriculumSampler,
    curriculum_indices,
    curriculum_sampler,
)
from gradtransforms.training.stopping import (
    EarlyStopping,
    EarlyStoppingState,
    early_stopping,
)

__all__ = [
    "CurriculumSampler",
    "EarlyStopping",
    "EarlyStoppingState",
    "curriculum_indices",
    "curriculum_sampler",
    "early_stopping",
    "epoch_indices",
    "minibatches",
]
