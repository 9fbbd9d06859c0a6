"""Package data: the shipped change descriptions and abi-check suppressions (TOML, read by config)."""
