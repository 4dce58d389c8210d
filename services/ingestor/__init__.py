"""Watches the drop folder, validates exports against dataset contracts, writes bronze."""
