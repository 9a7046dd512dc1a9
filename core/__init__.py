"""What every part of the shop may use and nothing of the shop's: the API's error shape and edge,
its JSON parser, the client's address, and the timeout chain.

The bottom layer (pyproject.toml's layers contract): it imports no other package of the project, so
config, the apps and the tools all import it without a cycle. Django and DRF, yes; the shop's apps, no.
"""
