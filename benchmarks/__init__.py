"""Benchmarks of notify-devino: ``python -m benchmarks`` (or ``tox -e bench``).

Not part of the test suite: each prints its figures and ratios against a baseline measured in
the same run, and none asserts a time.
"""
