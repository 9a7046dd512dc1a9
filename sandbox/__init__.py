"""A stand-in payment processor, reachable only over HTTP (see server.py)."""

# The key `make run` and the tests use (config.settings.local's default); PAYMENT_PROVIDER_API_KEY
# in the sandbox's environment replaces it.
DEFAULT_API_KEY = "sk_test_sandbox"
