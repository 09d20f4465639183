"""target-fortnox: a Singer target that upserts Moment customers, projects and invoices into Fortnox."""
