"""The review rules: pure functions from a series' patches and ABI models to findings."""
