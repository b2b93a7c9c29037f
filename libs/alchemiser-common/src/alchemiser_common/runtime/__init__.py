"""The Kafka processing runtime every service runs on."""
