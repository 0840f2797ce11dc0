"""The Dagster UI as `make dev` serves it: the webserver lists the eight assets and schedules, and draws the graph.

One ``dagster-webserver -w workspace.yaml`` per module, with a DAGSTER_HOME and storage database of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trading_data_tests.processes.conftest import IsolatedInstance
from trading_data_tests.processes.helpers import (
    ASSET_DEPENDENCIES,
    LOCATION,
    PROJECT_ROOT,
    REPOSITORY,
    SCHEDULE_NAMES,
    Process,
    graphql,
    start_webserver,
    wait_for_location,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]

ASSETS_AND_SCHEDULES_QUERY = """
query AssetsAndSchedules($repositorySelector: RepositorySelector!) {
  assetNodes { assetKey { path } dependencyKeys { path } groupName jobNames }
  schedulesOrError(repositorySelector: $repositorySelector) {
    __typename
    ... on Schedules { results { name cronSchedule executionTimezone scheduleState { status } } }
    ... on PythonError { message }
  }
}
"""
# The global asset lineage ("Lineage" in the left navigation of the Dagster 1.13 UI), with the three asset
# groups expanded (group ids are ``global@global:<group>``; the page keeps ``expanded`` in its URL).
ASSET_GROUPS = ("selection", "market_data", "analytics")
ASSET_GRAPH_PATH = "/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in ASSET_GROUPS)
SCREENSHOT = PROJECT_ROOT / "screenshots" / "asset_graph.png"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def webserver(isolated_instance: IsolatedInstance) -> Iterator[str]:
    proc: Process
    proc, base = start_webserver(
        isolated_instance.env, PROJECT_ROOT / "workspace.yaml", isolated_instance.logs
    )
    try:
        wait_for_location(base, proc)
        proc.assert_isolated()
        yield base
        proc.assert_isolated()
    finally:
        proc.stop()


def test_graphql_lists_assets_with_dependencies_and_running_schedules(webserver: str) -> None:
    data = graphql(
        webserver,
        ASSETS_AND_SCHEDULES_QUERY,
        {"repositorySelector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}},
    )

    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert set(nodes) == set(ASSET_DEPENDENCIES)
    deps = {key: {"/".join(d["path"]) for d in node["dependencyKeys"]} for key, node in nodes.items()}
    assert deps == ASSET_DEPENDENCIES
    assert deps["indicators"] == {"prices"}
    assert deps["position_sizes"] == {"selected_tickers"}
    assert "selected_tickers_job" in nodes["selected_tickers"]["jobNames"]

    schedules = data["schedulesOrError"]
    assert schedules["__typename"] == "Schedules", schedules
    by_name = {s["name"]: s for s in schedules["results"]}
    # The eight trading-day schedules (the location may define more, e.g. for checks).
    assert set(by_name) >= SCHEDULE_NAMES, SCHEDULE_NAMES - set(by_name)
    assert {by_name[n]["scheduleState"]["status"] for n in SCHEDULE_NAMES} == {"RUNNING"}
    assert {by_name[n]["executionTimezone"] for n in SCHEDULE_NAMES} == {"America/New_York"}
    assert by_name["ticker_selection_schedule"]["cronSchedule"] == "35 9 * * 1-5"


def _check_not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1600, 1000)
        rgb = image.convert("RGB")
        colors = rgb.getcolors(maxcolors=1_000_000) or []
        # A blank or error page has a handful of colours; the graph has text, node cards and edges.
        assert len(colors) > 200, f"only {len(colors)} colours: the page looks blank"
        # The commonest colour (the background) must leave room for drawn content.
        count, _ = max(colors)
        assert count < 0.97 * rgb.width * rgb.height, "the page is almost a single colour"


def _chromium(args: list[str], profile: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=1600,1000",
            "--virtual-time-budget=15000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (as root: apt-get install -y chromium)"
)
def test_asset_graph_screenshot(webserver: str) -> None:
    url = f"{webserver}{ASSET_GRAPH_PATH}"
    # The UI opens a "Join the Dagster community" dialog on 127.0.0.1 until this instance has seen it.
    assert graphql(webserver, "mutation { setNuxSeen }")["setNuxSeen"] is True
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        dom = _chromium(["--dump-dom", url], profile)
        shot = _chromium([f"--screenshot={SCREENSHOT}", url], profile)
    assert shot.returncode == 0, shot.stderr[-3000:]
    assert SCREENSHOT.exists(), shot.stderr[-3000:]
    assert SCREENSHOT.stat().st_size > 20_000
    _check_not_blank(SCREENSHOT)
    # The rendered page (after its GraphQL queries) draws the expanded groups and their assets; the graph
    # renders only the nodes inside the viewport, so not every asset name is in the DOM.
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert "Global asset lineage" in dom.stdout
    missing_groups = [g for g in ASSET_GROUPS if g not in dom.stdout]
    assert not missing_groups, f"asset graph page does not show the groups {missing_groups}"
    shown = [name for name in ASSET_DEPENDENCIES if f">{name}<" in dom.stdout]
    assert len(shown) >= 3, f"asset graph page draws too few asset nodes: {shown}"
