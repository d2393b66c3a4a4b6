"""`vitals canary` (CONTRACT section 7): the synthetic canary patient's device, publishing a
reading over MQTT every VITALS_CANARY_EVERY_S seconds so that alerting can tell, every round,
that a fever still travels the whole path. It imports only the kernel (`vitals`)."""
