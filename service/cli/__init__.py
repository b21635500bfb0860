"""The `roomlog` command and the embedded PostgreSQL and nats-server it starts."""
