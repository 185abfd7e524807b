"""Tests of gradtransforms.tree."""
