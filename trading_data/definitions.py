"""The code location: every definition of ``trading_data/defs``, loaded by domain with Dagster's own loader
(``[tool.dg.project]`` in pyproject.toml names the package; ``dg list defs`` shows what it finds).

The loader builds the defs folder of the project's component tree, not the tree's root:
``dg.load_from_defs_folder`` (the root) also snapshots the JSON schema of every component type the installed
dg plugins register (``plugin_component_types_json``, a UI catalogue; this project defines no component
types), ~0.07 s of CPU in every process that imports the definitions, step subprocesses included, and has no
option to skip it (issue 11). The tree is attached, so Dagster sees the same components as before.
"""

import warnings
from pathlib import Path

import dagster as dg

from trading_data.defs.analytics.checks import ANALYTICS_CHECKS
from trading_data.defs.market_data.checks import MARKET_DATA_CHECKS
from trading_data.defs.selection.checks import SELECTION_CHECKS

_tree = dg.ComponentTree.for_project(path_within_project=Path(__file__).parent)
with warnings.catch_warnings():  # as load_from_defs_folder does: its module loader is a preview API
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = dg.Definitions.merge(
        _tree.build_defs(_tree.defs_module_path), dg.Definitions(component_tree=_tree)
    )

# For tests and scripts that materialize the assets outside the code location.
ASSETS = list(defs.assets or ())
# The SQL checks of the data (not the freshness checks, which read the instance).
ASSET_CHECKS = [*SELECTION_CHECKS, *MARKET_DATA_CHECKS, *ANALYTICS_CHECKS]
SENSORS = list(defs.sensors or ())
