"""The JSON schemas of tap-moment's streams (customers, projects, invoices)."""
