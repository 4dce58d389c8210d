"""The `nova` command: run the embedded stack and the operator tasks."""
