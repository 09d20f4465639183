"""Both jobs for many tenants on Dagster (docs/SCALING.md, orchestrator/README.md)."""
