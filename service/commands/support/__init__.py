"""Support desk commands: load the desk or a session, decide with the pure rules, append."""
