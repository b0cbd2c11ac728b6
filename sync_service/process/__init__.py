"""The process: the `sync-service` entry point (`main`) and the composition root (`app`).

Nothing below this package imports it; it wires the database pool, the HTTP API, the workers
and the dispatcher together and owns their TaskGroup.
"""
