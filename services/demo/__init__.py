"""Generated demo data in the shape of the company's real exports (no real file is copied)."""
