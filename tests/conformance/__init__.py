"""optax's shipped test suite, run against gradtransforms' shared names."""
