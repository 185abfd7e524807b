"""Tests of the example scripts, one module per example."""
