"""The jinja2 environment for patch text: the user's template directory first, then the shipped one.

Templates get plain values (dates and versions come from the caller) and
run with ``StrictUndefined``: a missing value is an error, never an empty
string in a patch.
"""

from __future__ import annotations

import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

import xenpatch

from ..errors import ConfigError, InputError

SUBDIR = "generate"


def shipped_templates() -> Path:
    """``templates/`` of the source checkout, else the installed ``xenpatch._templates``."""
    source = Path(xenpatch.__file__).resolve().parent.parent / "templates"
    if (source / SUBDIR).is_dir():
        return source
    return Path(str(resources.files("xenpatch._templates")))


def pad(text: str, column: int) -> str:
    """TEXT padded with spaces to COLUMN, or followed by one space when it is already that long."""
    return text + " " * (column - len(text)) if len(text) < column else text + " "


def reflow(text: str, width: int = 75) -> str:
    """TEXT with each paragraph of plain lines refilled to WIDTH columns.

    Paragraphs are separated by blank lines; a paragraph with an indented
    line (code, a quoted log, a list) keeps its lines as written."""
    out = []
    for para in text.strip("\n").split("\n\n"):
        lines = para.split("\n")
        if any(line[:1].isspace() or line.lstrip().startswith(("-", "*")) for line in lines):
            out.append(para)
        else:
            out.append(textwrap.fill(" ".join(line.strip() for line in lines), width,
                                     break_long_words=False, break_on_hyphens=False))
    return "\n\n".join(out)


def make_env(user_dir: Path | None = None) -> jinja2.Environment:
    """The environment; USER_DIR (``[series].templates``) overrides shipped templates by name."""
    dirs = []
    if user_dir is not None:
        if not user_dir.is_dir():
            raise ConfigError(f"series.templates = {str(user_dir)!r}: not a directory")
        dirs.append(str(user_dir / SUBDIR) if (user_dir / SUBDIR).is_dir() else str(user_dir))
    dirs.append(str(shipped_templates() / SUBDIR))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(dirs), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True, autoescape=False)
    env.filters["pad"] = pad
    env.filters["reflow"] = reflow
    return env


def render(env: jinja2.Environment, template: str, **values: Any) -> str:
    """TEMPLATE rendered with VALUES; template errors name the template."""
    try:
        return env.get_template(template).render(**values)
    except jinja2.TemplateNotFound as e:
        raise InputError(f"template {template}: not found in {env.loader.searchpath}") from e  # type: ignore[union-attr]
    except jinja2.UndefinedError as e:
        raise InputError(f"template {template}: {e.message}") from e
    except jinja2.TemplateSyntaxError as e:
        raise InputError(f"template {e.filename or template}:{e.lineno}: {e.message}") from e
