"""odqa-serve: ``odqa serve``, a pipeline behind an HTTP API with micro-batching and a question-answering page.

The application is built by :func:`odqa_serve.app.create_app` from a pipeline factory and
:class:`odqa_serve.app.ServeSettings`; the same FastAPI app object can be run by uvicorn (``odqa serve``) or wrapped
by another ASGI host (Ray Serve's ``serve.ingress``).
"""
