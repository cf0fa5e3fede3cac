"""result_threads: a block runs on the given torch thread count, and the caller's count comes back."""

from __future__ import annotations

import pytest
import torch

from dra.threads import RESULT_THREADS, result_threads


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_the_block_runs_on_result_threads_and_the_count_is_restored(two_threads):
    with result_threads():
        assert torch.get_num_threads() == RESULT_THREADS == 1
    assert torch.get_num_threads() == 2


def test_the_count_is_restored_after_an_exception(two_threads):
    with pytest.raises(KeyError):
        with result_threads():
            raise KeyError("inside")
    assert torch.get_num_threads() == 2
