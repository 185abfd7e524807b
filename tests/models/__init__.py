"""Tests of the models (gradtransforms.models), one module per model module."""
