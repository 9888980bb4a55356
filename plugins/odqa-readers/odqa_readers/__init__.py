"""odqa-readers: the ``extractive`` and ``generative`` readers and ``odqa train reader``.

Importing this package imports neither torch nor transformers; they load when a model is used.
"""

__version__ = "0.1.0"
