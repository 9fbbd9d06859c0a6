"""A thread from a public-inbox v2 git mirror (``git/N.git`` epochs, or one epoch's clone)."""

from __future__ import annotations

from pathlib import Path

from .. import gitrepo
from ..errors import InputError
from .limits import Limits
from .series import Mail, parse_mail, references_of

_HEAD_BYTES = 64 * 1024  # enough for the header of any mail we index


def epochs(path: Path) -> list[Path]:
    """The epoch repositories of the inbox or clone at PATH, in epoch order."""
    git_dir = path / "git"
    if git_dir.is_dir():
        found = [p for p in git_dir.iterdir() if p.name.endswith(".git") and p.name[:-4].isdigit()]
        if not found:
            raise InputError(f"{path}: a public-inbox inbox without epochs (git/N.git)")
        return sorted(found, key=lambda p: int(p.name[:-4]))
    return [path]


def load_thread(path: Path, message_id: str, limits: Limits) -> list[Mail]:
    """The mails of the thread MESSAGE_ID belongs to, in archive order: every mail
    linked to it through In-Reply-To/References, as public-inbox threads them."""
    repos = [gitrepo.open_repo(epoch) for epoch in epochs(path)]
    index: list[tuple[int, str, str, tuple[str, ...]]] = []  # epoch, blob, msgid, parents
    for n, repo in enumerate(repos):
        for blob, _, head in gitrepo.blob_heads(repo, gitrepo.inbox_blobs(repo), _HEAD_BYTES):
            mid, parents = references_of(head)
            if mid:
                index.append((n, blob, mid, parents))
    parent_of: dict[str, str] = {}

    def find(x: str) -> str:
        while parent_of.get(x, x) != x:
            parent_of[x] = parent_of.get(parent_of[x], parent_of[x])
            x = parent_of[x]
        return x

    for _, _, mid, parents in index:
        for p in parents:
            a, b = find(mid), find(p)
            if a != b:
                parent_of[a] = b
    if not any(mid == message_id for _, _, mid, _ in index):
        raise InputError(f"{path}: no message <{message_id}> in the mirror")
    root = find(message_id)
    chosen = [(repo, blob) for repo, blob, mid, _ in index if find(mid) == root]
    if len(chosen) > limits.max_messages:
        raise InputError(f"{path}: the thread of <{message_id}> has {len(chosen)} messages, "
                         f"more than {limits.max_messages} ([review].max_messages)")
    mails = []
    for n, blob in chosen:
        repo = repos[n]
        if gitrepo.blob_size(repo, blob) > limits.max_message_bytes:
            raise InputError(f"{path}: message blob {blob[:12]} is larger than "
                             f"{limits.max_message_bytes} bytes ([review].max_message_bytes)")
        mails.append(parse_mail(gitrepo.read_blob(repo, blob, limits.max_message_bytes)))
    return mails
