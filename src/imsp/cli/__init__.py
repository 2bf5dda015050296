"""The ``imsp`` command: thin commands over the domains."""
