"""What a command hands back to ``cli.py``: its exit code and what to show (commands never print)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Result:
    """A command's outcome.

    ``text`` goes to ``output`` (``-o FILE``, written atomically) or stdout;
    ``messages`` are progress and warning lines for stderr, which ``-q`` hides;
    ``exit_code`` follows DESIGN.md (0 ok, 1 error-level findings)."""

    exit_code: int = 0
    text: str = ""
    output: str | None = None
    messages: tuple[str, ...] = ()

    @classmethod
    def of_json(cls, doc: dict[str, Any], exit_code: int = 0, output: str | None = None,
                messages: tuple[str, ...] = ()) -> Result:
        """A JSON document (sorted keys, as every xenpatch schema is written)."""
        return cls(exit_code, json.dumps(doc, sort_keys=True, indent=2) + "\n", output, messages)
