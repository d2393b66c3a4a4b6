"""`vitals evaluate`: a simulated cohort and its truth through ingest's parser and the pure rule
engine, scored.

- `run`: `Pipeline`, `run_cohort`, `run_traffic` (no brokers; processes split by patient);
- `score`: detection, delays, lead over nurse checks, false pages; `report`, `plots`: output;
- `command`: what the CLI calls.
"""
