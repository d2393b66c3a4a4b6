"""The kernel: what every stage shares and nothing else. It imports no other package of the
project.

- `records`: the records on Kafka (`Reading`, `DeviceStatus`, `Rejection`, `TrendPoint`,
  `AlertEvent`) and their encoding;
- `topics`: the Kafka topics, declared explicitly;
- `kafka`: the one Kafka client configuration (`producer_config`, `consumer_config`,
  `reader_config`) and `declare_topics`;
- `settings`: `Settings` from the environment and `.env`, `ConfigError` (one line, exit 2);
- `patients`: the patients file, `PatientRegistry`;
- `configfile`: loading the project's YAML files and the embedded defaults;
- `seqset`: `SeqSet`, the compact set of sequence numbers behind de-duplication;
- `trafficfile`: recorded MQTT traffic (`Message`), written by the simulators and `vitals
  export`, read by `vitals replay` and `vitals evaluate`;
- `ready`: the ready line a service prints once it works.
"""
