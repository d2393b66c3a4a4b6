"""Stage: Kafka readings, trends and alerts into InfluxDB 2 (`vitals store`), and a patient's
history back out (`vitals export`).

- `schema`: records -> line protocol (measurements, tags, fields);
- `target`: `InfluxTarget` behind the small `Target` interface the writer uses;
- `writer`: `run(settings, stop, on_ready)`: commit after write, back off on outages,
  dead-letter what InfluxDB refuses;
- `queries`: Flux with bound parameters; `export`: stored readings -> a traffic file.
"""
