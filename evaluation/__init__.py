"""`vitals evaluate`: a simulated cohort and its truth through the pure rule engine."""
