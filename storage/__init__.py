"""Storage: Kafka readings, trends and alerts into InfluxDB 2, and history back out."""
