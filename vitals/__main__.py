"""`python -m vitals`: the same as the `vitals` console command."""

from vitals.cli import main

main()
