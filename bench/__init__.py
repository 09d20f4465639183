"""The bench (``make bench``): the goals of docs/ARCHITECTURE.md measured on the sandboxes."""
