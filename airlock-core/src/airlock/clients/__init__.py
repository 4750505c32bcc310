"""The Python clients of the daemon (async, sync, service proxies, the session wallet,
the HTTP connection) and a daemon process started from Python (``LocalDaemon``). The
public face is :mod:`airlock.client`.
"""
