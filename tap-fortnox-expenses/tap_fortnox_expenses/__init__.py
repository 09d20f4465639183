"""Singer tap ``tap-fortnox-expenses``: project expenses booked on Fortnox supplier invoices."""
