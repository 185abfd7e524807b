"""Tests of gradtransforms.training, one module per library module."""
