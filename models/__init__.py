"""Flax NNX models for the gradtransforms examples (MLP, CNN, deep linear net)."""

__all__: list[str] = []
