"""Rule ``subject``: a patch's summary line against Xen's docs/process/sending-patches.pandoc.

"The hint which code is touched is usually in form of an abstract entity
... or a component ... Further specification is possible via adding a
sub-component with a slash": ``<component>: <description>``; "The subject
line should in general not exceed 80 characters."  Both are judgement
calls, so warnings.  The line judged is the commit's summary (what ``git
am`` records), without the mail's ``[PATCH vN m/n]`` prefix.
"""

from __future__ import annotations

import re

from ..finding import Finding

MAX_COLUMNS = 80
# "x86/hvm: ...", "tools/libxl: ...", "xen/arm, x86: ...", "CI: ...", "MAINTAINERS: ...",
# "x86/boot: ...", "tools/ocaml/xenstored: ...", "{xen,tools}/public: ...".
_AREA = re.compile(r"^[A-Za-z0-9_.{}*+/-]+(?:,? ?[A-Za-z0-9_.{}*+/-]+)*: \S")


def check_subject(number: int, summary: str) -> list[Finding]:
    out: list[Finding] = []
    text = " ".join(summary.split())
    if not _AREA.match(text):
        out.append(Finding("subject", "warning", number, None, None,
                           f'"{text}" does not start with the area it touches: '
                           '"<component>: <description>" (docs/process/sending-patches.pandoc)'))
    if len(text) > MAX_COLUMNS:
        out.append(Finding("subject", "warning", number, None, None,
                           f"the subject is {len(text)} columns; it should not exceed "
                           f"{MAX_COLUMNS} (docs/process/sending-patches.pandoc)"))
    return out
