"""The platform's services; each has one composition root in its `main.py`."""
