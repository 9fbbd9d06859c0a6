"""Recipients from a Xen tree's MAINTAINERS, computed the way its scripts/get_maintainer.pl does.

Everything here is pure: the caller reads MAINTAINERS, the files and the
patches, and says which pattern paths are directories.  The behaviour
follows Xen's ``scripts/get_maintainer.pl`` (v0.26-xen) with the options
``scripts/add_maintainers.pl`` uses, i.e. its defaults: ``--email --nogit
--nogit-fallback --m --r --n --l --keywords --noremove-duplicates
--norolestats``.  Xen's rule for the result (``add_maintainers.pl``, the
MAINTAINERS preamble): lists go in To, maintainers and reviewers in Cc.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..errors import InputError

_TYPED = re.compile(r"^([A-Z]):\s*(.*)")
THE_REST = "THE REST"


@dataclass(frozen=True)
class Section:
    """One MAINTAINERS section: its title line and its ``X: value`` entries, in file order."""

    name: str
    entries: tuple[tuple[str, str], ...]

    def values(self, kind: str) -> tuple[str, ...]:
        return tuple(v for k, v in self.entries if k == kind)

    @property
    def status(self) -> str:
        # get_maintainer_role(): the last S: wins.
        statuses = self.values("S")
        return statuses[-1] if statuses else "unknown"


@dataclass(frozen=True)
class Keyword:
    """A K: line: its section, and its regex alone (files, mail headers) and after ``^[+-].*``."""

    section: int
    anywhere: re.Pattern[str]
    in_diff: re.Pattern[str]


@dataclass(frozen=True)
class Maintainers:
    """A parsed MAINTAINERS file: its sections, F:/X: values already turned into regexes."""

    sections: tuple[Section, ...]
    keywords: tuple[Keyword, ...]


@dataclass(frozen=True)
class Recipients:
    """Who gets a patch: ``to`` the lists, ``cc`` the people (``Name <address>``)."""

    to: tuple[str, ...]
    cc: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"schema": "xenpatch-maintainers/1", "to": list(self.to), "cc": list(self.cc)}


def glob_to_regex(value: str, is_dir: Callable[[str], bool]) -> str:
    """An F:/X: value as get_maintainer.pl rewrites it: braces, ``.``, ``*``, ``?``, dirs get ``/``."""
    # Bash brace expansion, not nested: {a,b,c} -> (a|b|c), as get_maintainer.pl does.
    brace_many = re.compile(r"([^\\])\{(|[^},]*[^,\\]),((|[^},]*[^,\\]),(|[^}]*[^\\]))\}")
    while True:
        value, n = brace_many.subn(r"\1{\2|\3}", value)
        if n == 0:
            break
    value = re.sub(r"([^\\])\{(|[^},]*[^,\\]),(|[^}]*[^\\])\}", r"\1(\2|\3)", value)
    value = value.replace(".", "\\.").replace("*", ".*").replace("?", ".")
    # "if pattern is a directory and it lacks a trailing slash, add one" -- tested,
    # like the script, on the rewritten value relative to the tree root.
    if is_dir(value) and not value.endswith("/"):
        value += "/"
    return value


def parse_maintainers(text: str, is_dir: Callable[[str], bool],
                      where: str = "MAINTAINERS") -> Maintainers:
    """Parse MAINTAINERS TEXT; IS_DIR says whether a tree-relative path is a directory."""
    # The script keeps every non-blank line; a section is an untyped line (its
    # title) followed by typed "X: value" lines.  Lines before the first typed
    # line are the preamble.
    sections: list[Section] = []
    keywords: list[Keyword] = []
    title: str | None = None
    entries: list[tuple[str, str]] = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        m = _TYPED.match(raw)
        if m:
            kind, value = m.group(1), m.group(2)
            if kind in ("F", "X"):
                value = glob_to_regex(value, is_dir)
                _compile(value, where, lineno)
            elif kind == "K":
                keywords.append(_keyword(len(sections), value, where, lineno))
            elif kind == "N":
                _compile(value, where, lineno)
            if title is not None:
                entries.append((kind, value))
        elif raw.strip():
            if title is not None and entries:
                sections.append(Section(title, tuple(entries)))
            title, entries = raw, []
    if title is not None and entries:
        sections.append(Section(title, tuple(entries)))
    return _checked(Maintainers(tuple(sections), tuple(keywords)), where)


def _checked(maint: Maintainers, where: str) -> Maintainers:
    # get_maintainer.pl refuses a MAINTAINERS without "V: xen-maintainers-N" under THE REST.
    for s in maint.sections:
        if s.name == THE_REST and any(re.search(r"xen-maintainers-", v) for v in s.values("V")):
            return maint
    raise InputError(f"{where}: no 'V: xen-maintainers-<N>' under THE REST; not a Xen MAINTAINERS")


# K: and N: are Perl extended (/x) regexes run on bytes: Python's VERBOSE with
# ASCII-only \w and \b behaves the same on the patterns Xen uses.
_REGEX_FLAGS = re.VERBOSE | re.ASCII


def _compile(pattern: str, where: str, lineno: int) -> re.Pattern[str]:
    try:
        return re.compile(pattern, _REGEX_FLAGS)
    except re.error as e:
        raise InputError(f"{where}:{lineno}: pattern {pattern!r} is not a regex: {e}") from e


def _keyword(section: int, pattern: str, where: str, lineno: int) -> Keyword:
    # Inside a diff the script matches m/^[+-].*$keyword/x -- the two texts
    # pasted together, so the prefix binds to a top-level alternation's first arm.
    return Keyword(section, _compile(pattern, where, lineno),
                   _compile("^[+-].*" + pattern, where, lineno))


def file_match_pattern(path: str, pattern: str) -> bool:
    """get_maintainer.pl's file_match_pattern(): a trailing ``/`` matches the whole
    subtree, otherwise the pattern must match with the same number of ``/``."""
    if not re.match(pattern, path):
        return False
    return pattern.endswith("/") or path.count("/") == pattern.count("/")


def _section_depths(maint: Maintainers, path: str) -> dict[int, int]:
    """Section index -> pattern depth for every section whose F:/N: matches PATH."""
    hits: dict[int, int] = {}
    for index, section in enumerate(maint.sections):
        if any(file_match_pattern(path, x) for x in section.values("X")):
            continue
        for kind, value in section.entries:
            if kind == "F" and file_match_pattern(path, value):
                depth = value.count("/") + (0 if value.endswith("/") else 1)
                hits[index] = -1 if value.startswith(".*") else depth
            elif kind == "N" and re.search(value, path, _REGEX_FLAGS):
                hits[index] = 0
    return hits


@dataclass(frozen=True)
class ScriptRules:
    """How a tree's get_maintainer.pl treats THE REST; it changed in xen.git after 4.17.

    * ``reviewers_keep_the_rest``: xen.git 7114bbfc84 "get_maintainer: Add THE
      REST for sections with reviewers only" -- only a maintainer outside THE
      REST lets THE REST be dropped, a reviewer does not;
    * ``keywords_after_drop``: xen.git a2267eea69 "get_maintainer: Add
      maintainers based on keyword after removing THE REST".
    """

    reviewers_keep_the_rest: bool = True
    keywords_after_drop: bool = True

    @staticmethod
    def of_script(text: str | None) -> ScriptRules:
        """The rules a get_maintainer.pl's text implements (None: no script, the newest rules)."""
        if text is None:
            return ScriptRules()
        drop = text.find("$email_drop_the_rest_supporter_if_supporter_found &&")
        keywords = text.find("@keyword_tvi = sort_and_uniq(@keyword_tvi);")
        return ScriptRules(reviewers_keep_the_rest="ne 'reviewer'" in text,
                           keywords_after_drop=drop != -1 and keywords > drop)


def recipients(maint: Maintainers, paths: Iterable[str], keyword_sections: Iterable[int] = (),
               rules: ScriptRules = ScriptRules()) -> Recipients:
    """The To/Cc get_maintainer.pl prints for PATHS plus the sections whose K: matched."""
    people: list[tuple[str, str]] = []  # (address as printed, role), duplicates kept
    lists: list[str] = []
    suppress_the_rest = True
    for path in paths:
        hits = _section_depths(maint, path)
        # Most specific first; ties in section order (the script's order there is hash order).
        ordered = sorted(hits, key=lambda i: (-hits[i], i))
        for index in ordered:
            _add_section(maint.sections[index], people, lists)
        # A file maintained only by THE REST (or by nothing) puts all of THE REST on Cc.
        if all(_role(maint.sections[i]) == f"supporter:{THE_REST}" for i in ordered):
            suppress_the_rest = False
    if not rules.keywords_after_drop:
        for index in sorted(set(keyword_sections)):
            _add_section(maint.sections[index], people, lists)
    # --drop_the_rest_supporter (default on): when more than one address was found,
    # THE REST's maintainers are dropped if someone else maintains the files.
    if suppress_the_rest and len(people) > 1:
        ignored = {f"supporter:{THE_REST}"} | ({"reviewer"} if rules.reviewers_keep_the_rest
                                                else set())
        if any(role not in ignored for _, role in people):
            people = [p for p in people if p[1] != f"supporter:{THE_REST}"]
    if rules.keywords_after_drop:
        for index in sorted(set(keyword_sections)):
            _add_section(maint.sections[index], people, lists)
    return Recipients(to=_unique(lists), cc=_unique(format_address(a) for a, _ in people))


def _role(section: Section) -> str:
    # get_maintainer_role(): the S: status mapped to a role, ":" the section title.
    role = section.status.lower()
    role = {"supported": "supporter", "maintained": "maintainer", "odd fixes": "odd fixer",
            "orphan": "orphan minder", "obsolete": "obsolete minder"}.get(role, role)
    return f"{role}:{section.name}"


def _add_section(section: Section, people: list[tuple[str, str]], lists: list[str]) -> None:
    """add_categories(): L: lines (not subscribers-only) to the lists, M: and R: to the people."""
    for kind, value in section.entries:
        if kind == "L":
            _, address = parse_email(value)
            parts = address.split(None, 1)
            extra = parts[1] if len(parts) > 1 else ""
            if parts and "subscribers-only" not in extra:
                if parts[0].lower() not in (x.lower() for x in lists):
                    lists.append(parts[0])
        elif kind in ("M", "R"):
            name, address = parse_email(value)
            if address:
                people.append((format_address(_join(name, address)),
                               _role(section) if kind == "M" else "reviewer"))


def _join(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def parse_email(text: str) -> tuple[str, str]:
    """get_maintainer.pl's parse_email(): (name, address), the name quoted if it must be."""
    m = re.match(r"^([^<]+)<(.+@.*)>.*$", text)
    if m:
        return _quote(m.group(1)), m.group(2).strip()
    m = re.match(r"^\s*<(.+@\S*)>.*$", text) or re.match(r"^(.+@\S*).*$", text)
    return ("", m.group(1).strip()) if m else ("", "")


def _quote(name: str) -> str:
    name = re.sub(r'^"|"$', "", name.strip())
    # The script works on bytes: only ASCII letters, digits, "_", " " and "-"
    # may stay unquoted (so "Daniel P. Smith" and "Roger Pau Monné" get quotes).
    if re.search(r"[^\w \-]", name, re.ASCII):
        name = '"' + re.sub(r'(?<!\\)"', r'\\"', name) + '"'
    return name


def format_address(text: str) -> str:
    """The form the script prints (format_email with names): ``Name <address>`` or ``address``."""
    name, address = parse_email(text)
    return _join(_quote(name), address)


# --- what a patch or a file contributes -------------------------------------------------

_PATCH_FILE_LINES = (
    re.compile(r"^ mode change [0-7]+ => [0-7]+ (\S+)\s*$"),
    re.compile(r"^rename (?:from|to) (\S+)\s*$"),
)
_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)\s*$")
_PLUS_MINUS = re.compile(r"^(?:\+\+\+|---)\s+(\S+)")
_HUNK = re.compile(r"^@@ -(\d+),(\d+)")


def patch_files_and_keywords(maint: Maintainers, text: str) -> tuple[tuple[str, ...], frozenset[int]]:
    """The files a patch touches and the sections whose K: matches, as the script's patch mode.

    Before the first ``---``/``+++`` file line every line (mail headers, the
    commit message) is matched against K:; after it, only ``+``/``-`` lines.
    """
    files: list[str] = []
    hits: set[int] = set()
    in_diff = False
    for line in text.split("\n"):
        m = next((p.match(line) for p in _PATCH_FILE_LINES if p.match(line)), None)
        if m:
            files.append(m.group(1))
            continue
        m = _DIFF_GIT.match(line)
        if m:
            files.extend((m.group(1), m.group(2)))
            continue
        m = _PLUS_MINUS.match(line)
        if m:
            if m.group(1) != "/dev/null":
                files.append(re.sub(r"^[^/]*/", "", m.group(1)))
            in_diff = True
            continue
        if _HUNK.match(line):
            continue
        if in_diff and not re.match(r"^[+-]", line):
            continue
        for kw in maint.keywords:
            if (kw.in_diff if in_diff else kw.anywhere).search(line):
                hits.add(kw.section)
    return tuple(sorted(set(files))), frozenset(hits)


def file_keywords(maint: Maintainers, content: str) -> frozenset[int]:
    """Sections whose K: matches anywhere in a file's content (the script's ``-f`` mode)."""
    return frozenset(kw.section for kw in maint.keywords if kw.anywhere.search(content))


def for_paths(maint: Maintainers, paths: Iterable[str], contents: Mapping[str, str],
              rules: ScriptRules = ScriptRules()) -> Recipients:
    """``get_maintainer.pl -f PATH...``: CONTENTS holds the text of the paths that are files."""
    paths = tuple(paths)
    keyword_hits: set[int] = set()
    for path in paths:
        if path in contents and path != "MAINTAINERS":
            keyword_hits |= file_keywords(maint, contents[path])
    return recipients(maint, paths, keyword_hits, rules)


def for_patches(maint: Maintainers, patches: Iterable[tuple[str, str]],
                rules: ScriptRules = ScriptRules()) -> Recipients:
    """``get_maintainer.pl PATCH...`` for (name, text) pairs; a text without a diff is an InputError."""
    files: set[str] = set()
    keyword_hits: set[int] = set()
    for name, text in patches:
        touched, hits = patch_files_and_keywords(maint, text)
        if not touched:
            raise InputError(f"{name}: not a patch (no diff in it)")
        files.update(touched)
        keyword_hits |= hits
    return recipients(maint, sorted(files), keyword_hits, rules)
