"""`python -m cli`: the `vitals` command, also where the console script is not installed."""

from cli.app import main

main()
