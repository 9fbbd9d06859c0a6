"""The error types of xenpatch, each carrying its exit code (imports nothing from xenpatch).

Exit codes (DESIGN.md, "CLI contract"): 0 success, 1 error-level findings,
2 usage, configuration or input error, 3 environment failure.  Only
``cli.py`` turns these into exit codes and one line on stderr.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class XenpatchError(Exception):
    """Base of every error xenpatch reports; the message is one line."""

    exit_code = EXIT_USAGE


class UsageError(XenpatchError):
    """A command line that does not make sense (unknown arch, bad option value)."""

    exit_code = EXIT_USAGE


class ConfigError(XenpatchError):
    """A configuration file, key or value that is wrong; the message names the key."""

    exit_code = EXIT_USAGE


class InputError(XenpatchError):
    """Input that cannot be used: a tree without public headers, a header that
    does not preprocess, a file that is not a patch.  The message names the file."""

    exit_code = EXIT_USAGE


class EnvironmentFailure(XenpatchError):
    """Something outside the input failed: git or cpp missing, SMTP or HTTP failure."""

    exit_code = EXIT_ENVIRONMENT


class FindingsError(XenpatchError):
    """Work stopped because of error-level findings (e.g. a self-check of a series failed)."""

    exit_code = EXIT_FINDINGS
