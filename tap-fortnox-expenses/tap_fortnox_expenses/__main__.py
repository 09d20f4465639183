"""``python -m tap_fortnox_expenses`` runs the tap's CLI."""

from tap_fortnox_expenses.tap import TapFortnoxExpenses

TapFortnoxExpenses.cli()
