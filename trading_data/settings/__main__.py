"""``python -m trading_data.settings`` prints the README's settings table, generated from the declarations."""

from trading_data.settings import settings_table

print(settings_table())
