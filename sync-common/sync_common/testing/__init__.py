"""Test support shared by the packages' test folders; never imported at run time.

The modules are pytest plugins, loaded through the ``pytest11`` entry points in sync-common's
pyproject.toml.
"""
