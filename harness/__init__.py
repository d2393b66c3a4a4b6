"""Running the pipeline outside production: real servers on free loopback ports (`servers`:
Mosquitto, tansu, VictoriaMetrics, PostgreSQL), a `vitals` command as a process that is ready
when it says so (`services`), the whole pipeline as processes (`stack.Stack`), a local stand-in
for PagerDuty and other HTTP receivers (`pagerduty.PagerDutyStandIn`), a TCP relay that cuts a
connection (`relay`), what the pure engine says about a traffic file (`expected`), reading
Kafka and VictoriaMetrics back (`readback`), bounded waits (`waits`), and the chaos run
(`chaos`, with `chaos_plan`, `chaos_checks`, `chaos_report` and the devices' `gateway`). Used
by the tests, the benchmarks and `vitals demo`; no service imports it.
"""
