"""Benchmarks: scripts that print their numbers (`python -m bench` runs them all, each in its
own process, and writes one table). See bench/README.md."""
