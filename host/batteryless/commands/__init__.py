"""CLI verbs: argument parsing and output only; the work is in the library packages."""
