"""The test groups the suite relies on are honoured (tests that share a file or a cache run on one worker)."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("xdist_groups_probe")
def test_loadgroup_appends_the_group_to_the_node_id(request: pytest.FixtureRequest) -> None:
    # pytest-xdist's loadgroup scheduler keys on the "@group" suffix it appends to each node id at
    # collection; with pytest 9.2 and xdist 3.8 the suffix was silently dropped and groups ran apart.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("only meaningful under --dist loadgroup (make test)")
    assert request.node.nodeid.endswith("@xdist_groups_probe"), request.node.nodeid
