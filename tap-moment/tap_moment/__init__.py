"""tap_moment: a Singer tap for Moment (customers, projects, finalised invoices; incremental)."""
