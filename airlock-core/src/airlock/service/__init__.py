"""``airlock service``: run the daemon in the background, as the person or isolated.

* ``accounts``: the system users and groups of isolated mode (created, found, removed).
* ``units``: the systemd units, rendered from one description per daemon.
* ``supervisor``: start, stop and watch a daemon directly where systemd is not PID 1.
* ``program``: make sure the service user can run the program (a copy under /opt).
* ``isolated`` and ``personal``: install and uninstall for each mode.

Isolated mode runs one daemon today (``airlock``, the core). Each daemon is a
:class:`~airlock.service.units.Daemon` in :data:`~airlock.service.layout.DAEMONS`; a
second one (the connector host) is one more entry there.
"""
