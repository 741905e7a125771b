"""Cluster mode: cancellations sent by Celery workers on many machines (issue 14).

``cancelkit bulk FILE --queue URL`` lists a job in the shared ledger and puts one
``cancelkit.send`` task per request on a Celery broker (Redis by default); ``cancelkit
worker`` (or ``celery -A cancelkit.celery worker``) runs workers that send them through
the ordinary :class:`~cancelkit.core.client.Client`: the ledger claims each request's
key before the call leaves, so a redelivered task never sends twice. Guide:
docs/cluster.md.

Modules: :mod:`.settings` (where the broker is), :mod:`.app` (the Celery app),
:mod:`.tasks` (the two tasks), :mod:`.enqueue` (checking and queueing requests).
Celery loads only when one of them is imported.
"""
