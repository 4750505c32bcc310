"""The gateway daemon: one process holding the credentials, answering on a Unix socket."""
