"""The CRS rule engine and its Faust worker.

What the package offers (import from the modules; nothing is imported here, so that reading the
rules file does not load the engine, and the worker's Faust only where it runs):

- `stream_rules.config`: `load_rules`, `RulesFile` (the rules file, validated), `Rules`;
- `stream_rules.rules`: the rule registry, `RULES` (one `RuleSpec` per rule: its config model,
  judge, direction of worse, page words, severity by day), `spec`, `find`, `watching`;
- `stream_rules.engine`: `Engine` (one patient's rules: process, flush, silence) and `Output`
  (alert events and trend points), pure and event-timed;
- `stream_rules.state`: `PatientState` and its compact bytes (`dump`, `load`);
- `stream_rules.describe`: `summary`, the sentence a nurse reads;
- `stream_rules.batch`: `judge_batch` (one batch of the worker, without Faust) and `Judge`;
- `stream_rules.worker`: `run`, the `vitals rules` Faust worker.

The kernel package `vitals` never imports this one.
"""
