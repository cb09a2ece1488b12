import os
import tempfile

import pytest
import torch

# every test run gets its own model/judge cache (never the user's)
os.environ.setdefault("GENUNLEARN_CACHE", tempfile.mkdtemp(prefix="genunlearn-test-cache-"))
torch.set_num_threads(2)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
