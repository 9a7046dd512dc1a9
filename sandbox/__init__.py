"""A stand-in payment processor, reachable only over HTTP (see server.py)."""
