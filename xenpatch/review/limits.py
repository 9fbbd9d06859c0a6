"""Bounds on what a review source may hand us: sizes, counts and HTTP time (``[review]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Bounds on what a source may hand us (hostile input is normal input)."""

    max_message_bytes: int = 4 * 1024 * 1024  # one mail; xen-devel's biggest patches are ~1 MB
    max_messages: int = 2000  # mails of one thread
    max_patches: int = 200  # patches of one series version
    max_decompressed_bytes: int = 64 * 1024 * 1024  # a t.mbox.gz once inflated
    http_timeout: float = 30.0  # seconds, for connecting and for each read
    http_retries: int = 3  # further tries after a 5xx or a connection error

    @classmethod
    def from_config(cls, config: Any) -> Limits:
        """The limits of the ``[review]`` section of a xenpatch Config."""
        return cls(**{name: config.get("review", name) for name in cls.__dataclass_fields__})
