"""The project's thin common library: settings, event models, lake storage and logging."""
