"""``cancelkit.celery``: the Celery app of cluster mode, for ``celery -A cancelkit.celery``.

Start workers with ``cancelkit worker`` or, the same thing, ``celery -A cancelkit.celery
worker --concurrency 4``; see docs/cluster.md. ``app`` reads ``broker_url``
(``$CANCELKIT_BROKER_URL``, the config file, else ``redis://127.0.0.1:6379/0``).
"""

# The repository root is the ``cancelkit`` package, so with a checkout on ``sys.path``
# (``python -m`` from it) this file is also the top-level module ``celery``. Imported
# under that name it must not shadow the real Celery: it loads the real package with
# this folder left out of the path and puts it in its place in ``sys.modules``, which
# the import system returns to whoever imported ``celery``.
if __name__ == "celery":
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    del _sys.modules["celery"]
    _saved = _sys.path[:]
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.getcwd()) != _here]
    try:
        import celery as _real
    finally:
        _sys.path[:] = _saved
    _sys.modules["celery"] = _real
elif __name__ == "__main__":
    # ``python -m celery ...`` from a checkout runs this file as the script: run the real
    # Celery's command line instead (``-A cancelkit.celery`` then imports the facade).
    import os as _os
    import runpy as _runpy
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.getcwd()) != _here]
    _sys.modules.pop("celery", None)
    _runpy.run_module("celery", run_name="__main__", alter_sys=True)
else:
    from .cluster.app import app
    from .cluster.tasks import FOLLOW, SEND

    send = app.tasks[SEND]
    follow_status = app.tasks[FOLLOW]

    __all__ = ["app", "follow_status", "send"]
