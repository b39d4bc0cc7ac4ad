"""Subcommands of the ``flexsim`` CLI: each module defines ``add_arguments(parser)`` and ``run(args)``."""
