"""gdnet's version, in a module of its own so any part of the package can name it without
importing the package's top; pyproject.toml reads it from here."""

__version__ = "0.1.0"
