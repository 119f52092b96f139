"""Subcommands of the ``bridging`` CLI, one module per stage (each defines ``register(subparsers)``)."""
