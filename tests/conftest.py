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


@pytest.fixture
def cli(capsys):
    """Run ``genunlearn ARGS...`` in-process; returns (exit code, stdout, stderr)."""
    from genunlearn.cli import main

    def run(*args):
        with pytest.raises(SystemExit) as e:
            main(list(args))
            raise SystemExit(0)
        out = capsys.readouterr()
        return e.value.code, out.out, out.err

    return run
