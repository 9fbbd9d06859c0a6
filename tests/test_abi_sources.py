"""Where headers come from: a tree's work tree or commit, an installed directory, a dump file."""

from __future__ import annotations

import json

import pytest

from xenpatch.abi import sources
from xenpatch.abi.model import AbiModel, ArchModel, Source
from xenpatch.errors import InputError


def test_tree_work_tree_and_commit(xen_tree):
    work = sources.from_tree(xen_tree)
    assert work.rev is None and "xen.h" in work.files and "arch-x86/xen.h" in work.files
    assert all(h.endswith(".h") and not h.startswith("/") for h in work.files)
    committed = sources.from_tree(xen_tree, "base")
    assert committed.files == work.files and len(committed.rev or "") == 40
    assert committed.description.endswith("@base")


def test_spec_forms(xen_tree, headers_417, tmp_path):
    dump = tmp_path / "abi.json"
    model = AbiModel(Source("t", None), (ArchModel("x86_64", ("xen.h",)),))
    dump.write_text(model.dumps())
    assert sources.from_spec(str(dump), None) == model
    assert isinstance(sources.from_spec(str(xen_tree), None), sources.HeaderSource)
    assert sources.from_spec(str(headers_417), None).description == str(headers_417)
    assert sources.from_spec("base", xen_tree).rev is not None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(InputError, match="bad.json"):
        sources.from_spec(str(bad), None)
    with pytest.raises(InputError, match="no --tree"):
        sources.from_spec("HEAD", None)


def test_bad_sources(tmp_path):
    with pytest.raises(InputError, match="not a Xen tree"):
        sources.from_tree(tmp_path)
    with pytest.raises(InputError, match="no xen.h"):
        sources.from_headers_dir(tmp_path)
    with pytest.raises(InputError, match="unsafe header path"):
        sources._checked({"../x.h": b""}, "here")
    (tmp_path / "xen/include/public").mkdir(parents=True)
    with pytest.raises(InputError, match="no \\*.h headers"):
        sources.from_tree(tmp_path)
