"""abi/diff.py on real snapshots: the 4.17.5 tree against itself, Debian's 4.17 and 4.20 headers."""

from __future__ import annotations

from xenpatch.abi import api, sources
from xenpatch.abi.diff import changes_json, diff_models

ALL = ("x86_32", "x86_64", "arm32", "arm64")


def test_a_tree_against_itself_has_no_change(xen_tree):
    model = api.dump(sources.from_tree(xen_tree))
    again = api.dump(sources.from_tree(xen_tree, "HEAD"))
    assert diff_models(model, again) == ()


def test_4_17_to_4_20_headers(headers_417, headers_420):
    changes = diff_models(api.dump(sources.from_headers_dir(headers_417)),
                          api.dump(sources.from_headers_dir(headers_420)))
    got = {(c.kind, c.severity, c.name, c.field): c for c in changes}
    # Xen 4.19 added altp2m_opts to the domain creation struct: the fields after it moved.
    added = got[("field-added", "breaking", "struct xen_domctl_createdomain", "altp2m_opts")]
    assert added.arches == ALL and added.header == "domctl.h"
    moved = got[("field-offset-changed", "breaking", "struct xen_domctl_createdomain", "cpupool_id")]
    assert (moved.old, moved.new) == (52, 56)
    # New constants are compatible; a version bump is info.
    assert got[("macro-added", "compatible", "XEN_DOMCTL_ALTP2M_mixed", None)].new == 1
    bump = got[("macro-value-changed", "info", "XEN_DOMCTL_INTERFACE_VERSION", None)]
    assert (bump.old, bump.new) == (0x15, 0x17)
    # Every change names a header and a line of the side it comes from.
    assert all(c.header and c.line > 0 for c in changes)
    doc = changes_json(changes, "4.17", "4.20")
    assert doc["summary"]["breaking"] > 0 and len(doc["changes"]) == len(changes)
