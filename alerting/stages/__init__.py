"""The alerting pipeline as named stages, in the manner of Prometheus Alertmanager's
`Stage.Exec` and `MultiStage` (notify.go): each stage takes an event with what earlier stages
learned (`Flow`) and what it may look up, and returns a `Decision`: go on, or stop here with an
outcome; plus the records to write. `Pipeline` runs stages in order and reports which stage
decided (`Verdict`).

A firing event:   dedup -> silence -> severity -> route -> group -> escalate -> notify
A resolved event: dedup -> clear -> escalate -> notify

Modules: `pipeline` (Flow, Decision, Stage, Pipeline, Verdict), `records` (what stages ask to be
written), and one module per stage: `dedup`, `clear`, `silence`, `severity`, `route`, `group`,
`escalate`, `notify` (effects -> intents, also used by the clock, acks and resolves).
"""
