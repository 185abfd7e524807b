"""Tests of gradtransforms.tuning, one module per library module."""
