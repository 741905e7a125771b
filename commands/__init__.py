"""Built-in commands kept in modules of their own, imported only when they run.

``cancelkit.cli`` names each one in its ``_LAZY`` table (module, attribute, short
help), so ``cancelkit --help`` lists them without importing them.
"""
