"""Performance measurements (scripts, not unit tests): `python -m benchmarks.<name>`."""
