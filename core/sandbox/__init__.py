"""A local, stateful emulator of every platform (like moto's server mode).

``emulator`` is the contract an emulator implements, ``server`` the HTTP server
that hosts them all, ``faults`` the faults it can inject.
"""
