"""Tests of gradtransforms.second_order, one module per solver module."""
