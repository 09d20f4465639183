"""The JSON schemas of tap-fortnox-expenses's streams (projects, project expenses)."""
