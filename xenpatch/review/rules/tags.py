"""Rules ``signed-off-by`` and ``tags``: a patch's trailers against Xen's docs/process/sending-patches.pandoc.

* ``Signed-off-by:`` is mandatory, one per author ("This mandatory tag
  specifies the author(s) of a patch"): none, or none from the patch's
  author, is an error.
* "In general tags are added in chronological order. So a
  ``Reviewed-by:`` tag should be added **after** the ``Signed-off-by:``
  tag": a review tag before the first Signed-off-by is a warning (tags
  above an ``Origin:`` tag come from the original patch and are not
  judged).
* ``Fixes: <commit-id> ("<patch-subject>")`` "with the first 12
  characters of the commit id": another shape is a warning.
* A ``Reviewed-by:``/``Acked-by:`` from an automated address (a bot gives
  no review tags; xenpatch never adds any) is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import parseaddr

from ..finding import Finding

_FIXES = re.compile(r'^[0-9a-f]{12} \(".+"\)$')
_HASH_START = re.compile(r"^([0-9a-fA-F]{6,40})\b")
REVIEW_TAGS = ("reviewed-by", "acked-by", "tested-by", "release-acked-by")
BEFORE_SIGNOFF = ("reported-by", "suggested-by", "requested-by")
# Addresses that are not people: list robots and CI bots (patchew, the kernel's
# 0-day "lkp", GitHub/GitLab no-reply senders), and xenpatch itself.
_BOT = re.compile(r"(^|[.+_@-])(bot|robot|noreply|no-reply|patchew|lkp|xenpatch)([.+_@-]|$)",
                  re.IGNORECASE)


def _email(value: str) -> str:
    return parseaddr(value)[1].lower()


def check_tags(number: int, author: str, trailers: Sequence[tuple[str, str]]) -> list[Finding]:
    """The tag findings of patch NUMBER by AUTHOR ("Name <email>") with TRAILERS (in order)."""
    out: list[Finding] = []
    keys = [k.lower() for k, _ in trailers]
    signers = [parseaddr(v) for k, v in trailers if k.lower() == "signed-off-by"]
    sobs = [a.lower() for _, a in signers]
    name, who = parseaddr(author)
    # The same person may sign with another address than the one git recorded as
    # the author (a change of employer): a matching name counts too.
    matched = who.lower() in sobs or (name and name.lower() in (n.lower() for n, _ in signers))
    if not sobs:
        out.append(Finding("signed-off-by", "error", number, None, None,
                           "no Signed-off-by: tag; it is mandatory (docs/process/"
                           "sending-patches.pandoc, Developer's Certificate of Origin)"))
    elif (who or name) and not matched:
        out.append(Finding("signed-off-by", "error", number, None, None,
                           f"no Signed-off-by: from the author {author.strip()}; only "
                           f"{', '.join(sorted(set(sobs)))}"))
    start = keys.index("origin") + 1 if "origin" in keys else 0
    judged = list(trailers)[start:]
    first_sob = next((i for i, (k, _) in enumerate(judged) if k.lower() == "signed-off-by"), None)
    for i, (key, value) in enumerate(judged):
        k = key.lower()
        if first_sob is not None and i < first_sob and k in REVIEW_TAGS:
            out.append(Finding("tags", "warning", number, None, None,
                               f"{key}: comes before the author's Signed-off-by:; tags are "
                               "added in chronological order (docs/process/sending-patches.pandoc)"))
        if first_sob is not None and i > first_sob and k in BEFORE_SIGNOFF:
            out.append(Finding("tags", "warning", number, None, None,
                               f"{key}: after Signed-off-by:; it records what came before the "
                               "patch was written (chronological order, docs/process/"
                               "sending-patches.pandoc)"))
        if k == "fixes":
            out.extend(_fixes(number, value.strip()))
        if k in ("reviewed-by", "acked-by") and _BOT.search(_email(value)):
            out.append(Finding("tags", "error", number, None, None,
                               f"{key}: {value.strip()} looks automated; review tags are given "
                               "by people, never by a bot"))
    return out


def _fixes(number: int, value: str) -> list[Finding]:
    if _FIXES.match(value):
        return []
    m = _HASH_START.match(value)
    if m and len(m.group(1)) != 12:
        problem = f"the commit id has {len(m.group(1))} characters, not 12"
    elif m:
        problem = 'the subject is missing or not in ("...")'
    else:
        problem = "it does not start with a commit id"
    return [Finding("tags", "warning", number, None, None,
                    f"Fixes: {value}: {problem}; the form is Fixes: <12-char commit id> "
                    '("<subject>") (docs/process/sending-patches.pandoc)')]
