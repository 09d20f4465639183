"""target-fortnox: Singer target upserting Moment customers, projects and invoices into Fortnox."""
