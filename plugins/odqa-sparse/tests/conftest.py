from __future__ import annotations

import pytest
from sparse_testdata import make_corpus


@pytest.fixture(params=[0, 1, 2])
def corpus(request):
    return make_corpus(request.param)
