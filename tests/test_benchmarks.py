"""Smoke runs of the benchmark scripts: tiny sizes, checks the report's shape.

The benchmarks themselves are run by hand (see benchmarks/README.md); CI only
checks that they still run and write what they promise.
"""

from __future__ import annotations

import re

import jax
import pytest

from benchmarks import optimizer_step, precision


def test_optimizer_step_smoke(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Earlier section\n\nkept\n")
    argv = [
        "--size", "4096", "--leaves", "8", "--repeats", "1", "--no-torch",
        "--timing-seconds", "0.01", "--trees", "a", "b", "d",
        "--optimizers", "sgd", "clip+adam", "--compile-leaves", "8",
        "--write", str(results),
    ]  # fmt: skip
    with jax.numpy_dtype_promotion("standard"):  # optax fails under "strict"
        optimizer_step.main(argv)
    text = results.read_text()
    assert "## Earlier section\n\nkept" in text  # other sections are kept
    assert text.count(optimizer_step.BEGIN) == 1
    section = text[text.index(optimizer_step.BEGIN) :]
    for tree in ("(a) one leaf", "(b) 8 leaves", "(d) BatchNorm MLP"):
        assert re.search(rf"\| {re.escape(tree)} \| sgd \| [0-9.]+ \(", section), tree
    # SGD compiles to the same program in both libraries.
    assert re.search(r"\| \(a\) one leaf \| sgd \|.*\| (\d+) / \1 \| yes \|\n", section)
    assert re.search(r"Whole training step.*\n\n\| gt \|.*\n.*\n\| [0-9.]+ \(", section)
    assert "(c)" not in section and "(e)" not in section  # not selected
    assert "% of x + y bandwidth" not in section  # adam not run: no bandwidth table
    assert re.search(
        r"\| 8 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|", section
    )
    # Writing again replaces the section rather than appending a second one.
    optimizer_step.write_section(results, "replaced")
    assert results.read_text().count(optimizer_step.BEGIN) == 1
    assert "replaced" in results.read_text()
    assert "| (a) one leaf | sgd |" in capsys.readouterr().out


def test_optimizer_step_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        optimizer_step.main(["--size", "0"])


def test_precision_smoke(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Earlier section\n\nkept\n")
    argv = [
        "--epochs", "1", "--learning-rates", "1e-3", "--hidden", "8",
        "--train-examples", "96", "--batch-size", "32", "--write", str(results),
    ]  # fmt: skip
    # Flax's BatchNorm promotes its 16-bit inputs to float32 implicitly.
    with jax.numpy_dtype_promotion("standard"):
        precision.main(argv)
    text = results.read_text()
    assert "## Earlier section\n\nkept" in text
    assert text.count(precision.BEGIN) == 1 and "## Training in 16 bits" in text
    assert "digits MLP 64-8-10, BatchNorm on" in text
    for dtype in ("float32", "bfloat16", "float16"):
        assert re.search(rf"\| {dtype} \| `gt.adam\(0.001\)` \| [0-9.]+ \|", text)
        row = rf"\| {dtype} \| `gt.master_weights\(gt.adam\(0.001\)\)` \|"
        assert dtype == "float32" or re.search(row, text)
    # Writing again replaces the section rather than appending a second one.
    precision.write_section(results, "replaced")
    assert results.read_text().count(precision.BEGIN) == 1
    assert "replaced" in results.read_text()
