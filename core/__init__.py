"""The platform-independent core: canonical model, hooks, transport, sandbox."""
