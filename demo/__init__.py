"""`vitals demo`: the whole pipeline on embedded defaults, end to end, in one command. See
run.py for the order of things; the other modules each hold one part (what is observed, the
simulated nurse, the console view, the report)."""
