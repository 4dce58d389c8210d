"""Read-only HTTP access to gold; serves only precomputed data."""
