"""The drain study (study.py); `python -m loadtests.drain` runs it (__main__.py)."""
