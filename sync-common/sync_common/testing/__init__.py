"""Test support shared by the packages' test folders (pytest plugins, loaded through the
``pytest11`` entry points in sync-common's pyproject.toml; never imported at run time)."""
