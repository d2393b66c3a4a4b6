"""Running the pipeline outside production: real servers on free loopback ports (`servers`:
Mosquitto, tansu, VictoriaMetrics), a `vitals` command as a process that is ready when it says
so (`services`), the whole pipeline as processes (`stack.Stack`), and a local stand-in for
PagerDuty and other HTTP receivers (`pagerduty.PagerDutyStandIn`). Used by the tests, the
benchmarks and `vitals demo`; no service imports it.
"""
