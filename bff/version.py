"""The one source of bff's version: setup.cfg reads it (``attr:``), the app reports it."""

__version__ = "0.1.0"
