"""An example Airlock plugin: a read-only weather connector."""
