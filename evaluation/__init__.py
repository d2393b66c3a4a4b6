"""`vitals evaluate`: a simulated cohort and its truth through ingest's parser and the pure rule
engine, scored.

- `run`: `Pipeline`, `run_cohort`, `run_traffic` (no brokers; processes split by patient);
- `score`: detection, delays, lead over nurse checks, false pages; `targets`: the one table of
  targets and the verdicts; `report`, `plots`: output; `seeds`: several seeds side by side;
- `command`: what the CLI calls.
"""
