"""What the telegram and signal notifier tests share: a local HTTP server in a thread (for
the stand-ins of each messenger's API), an in-process runtime with an injected clock, and
a real daemon process with a small test connector (for tests driven end to end)."""
