"""The jinja2 environment for patch text: the user's template directory first, then the shipped one.

Templates get plain values (dates and versions come from the caller) and
run with ``StrictUndefined``: a missing value is an error, never an empty
string in a patch.
"""

from __future__ import annotations

import textwrap
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jinja2

from ..errors import ConfigError, InputError

SUBDIR = "generate"


def shipped_templates() -> Traversable:
    """``templates/`` of a source checkout run without installing (``PYTHONPATH``, as the
    tests' subprocesses do), else the installed ``xenpatch._templates`` that
    pyproject.toml maps it to, read through importlib.resources (never as a path: it
    need not be a directory)."""
    source = Path(__file__).resolve().parents[2]
    if (source / "templates" / SUBDIR).is_dir() and (source / "pyproject.toml").is_file():
        return source / "templates"
    return resources.files("xenpatch._templates")


class ResourceLoader(jinja2.BaseLoader):
    """Templates read from an importlib.resources Traversable (wheel, site-packages, editable)."""

    def __init__(self, root: Traversable, where: str):
        self.root, self.where = root, where

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        node = self.root
        for part in template.split("/"):
            node = node / part
        if not node.is_file():
            raise jinja2.TemplateNotFound(template)
        return node.read_text(encoding="utf-8"), f"{self.where}/{template}", lambda: True

    def list_templates(self) -> list[str]:
        return sorted(n.name for n in self.root.iterdir() if n.is_file())


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
    loaders: list[jinja2.BaseLoader] = []
    if user_dir is not None:
        if not user_dir.is_dir():
            raise ConfigError(f"series.templates = {str(user_dir)!r}: not a directory")
        loaders.append(jinja2.FileSystemLoader(
            str(user_dir / SUBDIR) if (user_dir / SUBDIR).is_dir() else str(user_dir)))
    loaders.append(ResourceLoader(shipped_templates() / SUBDIR, f"xenpatch's shipped templates/{SUBDIR}"))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
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
        raise InputError(f"template {template}: not found in {_places(env)}") from e
    except jinja2.UndefinedError as e:
        raise InputError(f"template {template}: {e.message}") from e
    except jinja2.TemplateSyntaxError as e:
        raise InputError(f"template {e.filename or template}:{e.lineno}: {e.message}") from e


def _places(env: jinja2.Environment) -> str:
    """Where ENV looks for templates, for a 'not found' message."""
    loaders = env.loader.loaders if isinstance(env.loader, jinja2.ChoiceLoader) else [env.loader]
    places = []
    for loader in loaders:
        if isinstance(loader, jinja2.FileSystemLoader):
            places += [str(p) for p in loader.searchpath]
        elif isinstance(loader, ResourceLoader):
            places.append(loader.where)
    return ", ".join(places)
