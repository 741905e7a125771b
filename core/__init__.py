"""The platform-independent core: canonical model, hooks, transport, sandbox."""

from . import deferredregex

# Before anything imports marshmallow: see deferredregex for why (about 40 ms).
deferredregex.install()
