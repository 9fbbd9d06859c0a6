"""What a reply quotes: the hunks a patch's findings point at, cut to a few lines of context (pure).

A careful reviewer quotes only the lines they comment on, with a little
context above, ``[...]`` where the quote is cut, and writes each comment
right under the line it is about.  ``reply_blocks`` turns a patch's diff
and findings into that sequence of quoted lines and comments; the
template only prints it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from .finding import Finding
from .hunks import FileDiff

CONTEXT = 3  # lines quoted above a commented line
MAX_REMOVED = 8  # removed lines quoted below it before the quote is cut
WIDTH = 72


@dataclass(frozen=True)
class Block:
    kind: str  # "quote" (lines to prefix with "> ") or "comment" (lines as written)
    lines: tuple[str, ...]


def comment_lines(f: Finding) -> tuple[str, ...]:
    text = f"{f.severity} ({f.rule}): {f.message}"
    return tuple(textwrap.wrap(text, WIDTH, break_long_words=False, break_on_hyphens=False,
                               subsequent_indent="  "))


def grouped_comments(findings: Sequence[Finding]) -> list[str]:
    """The comment lines for FINDINGS on one line: more than two of one rule (a whole
    sub-op removed: its macros, its struct, its union member) as one comment naming
    them all, as a reviewer would write it once."""
    out: list[str] = []
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in sorted(findings, key=Finding.sort_key):
        groups.setdefault((f.severity, f.rule), []).append(f)
    for (severity, rule), fs in groups.items():
        if len(fs) <= 2:
            for f in fs:
                out += comment_lines(f)
            continue
        heads = [f.message.split(";", 1)[0] for f in fs]
        arches = {h[h.rfind(" ["):] for h in heads if h.endswith("]") and " [" in h}
        where = ""
        if len(arches) == 1:  # "[all arches]" once, not after every name
            where = arches.pop()
            heads = [h[:-len(where)] if h.endswith(where) else h for h in heads]
        tail = fs[0].message.split(";", 1)[1].strip() if ";" in fs[0].message else ""
        text = (f"{severity} ({rule}), {len(fs)} here{where}: {'; '.join(heads)}"
                + (f"; {tail}" if tail else ""))
        out += textwrap.wrap(text, WIDTH, break_long_words=False, break_on_hyphens=False,
                             subsequent_indent="  ")
    return out


def reply_blocks(diffs: Sequence[FileDiff], findings: Sequence[Finding]) -> tuple[tuple[Block, ...],
                                                                                   tuple[Finding, ...]]:
    """(the quote-and-comment blocks, the findings that are not under a quoted line)."""
    blocks: list[Block] = []
    placed: set[Finding] = set()
    for d in diffs:
        mine = [f for f in findings if f.file == d.path and f.line is not None]
        if not mine:
            continue
        header = [f"diff --git a/{d.old_path or d.path} b/{d.path}",
                  f"--- {'a/' + d.old_path if d.old_path else '/dev/null'}",
                  f"+++ b/{d.path}"]
        file_blocks: list[Block] = []
        for hunk in d.hunks:
            at = {i: [f for f in mine if f.line == ln.new and ln.kind != "-"]
                  for i, ln in enumerate(hunk.lines)}
            targets = [i for i, fs in at.items() if fs]
            if not targets:
                continue
            old_len = sum(ln.kind in " -" for ln in hunk.lines)
            new_len = sum(ln.kind in " +" for ln in hunk.lines)
            quoted: list[str] = [f"@@ -{hunk.old_start},{old_len} +{hunk.new_start},{new_len} @@ "
                                 f"{hunk.heading}".rstrip()]
            end = -1
            for t in targets:
                start = max(end + 1, t - CONTEXT)
                if start > end + 1:
                    quoted.append("[...]")
                last = t  # removed lines right below belong to the quote (a removal's finding)
                while last + 1 < len(hunk.lines) and hunk.lines[last + 1].kind == "-":
                    last += 1
                shown = [ln.kind + ln.text for ln in hunk.lines[start:last + 1]]
                if last - t > MAX_REMOVED:  # a long removal: its start is enough
                    shown = shown[:t - start + 1 + MAX_REMOVED // 2] + ["[...]"]
                quoted += shown
                file_blocks.append(Block("quote", tuple(quoted)))
                placed.update(at[t])
                file_blocks.append(Block("comment", tuple(grouped_comments(at[t]))))
                quoted, end = [], last
            if end < len(hunk.lines) - 1:
                file_blocks.append(Block("quote", ("[...]",)))
        if file_blocks:
            blocks.append(Block("quote", tuple(header)))
            blocks += file_blocks
    rest = tuple(f for f in sorted(findings, key=Finding.sort_key) if f not in placed)
    return tuple(_merge(blocks)), rest


def _merge(blocks: list[Block]) -> list[Block]:
    """Adjacent blocks of the same kind as one (a file header and its first hunk)."""
    out: list[Block] = []
    for b in blocks:
        if out and out[-1].kind == b.kind == "quote":
            out[-1] = Block("quote", out[-1].lines + b.lines)
        else:
            out.append(b)
    return out
