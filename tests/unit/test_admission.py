"""Admission control: a bounded queue per model, refusing with Retry-After."""

from __future__ import annotations

import pytest

from offramp.errors import Overloaded
from offramp.local.admission import Admission


def test_admits_up_to_concurrency_plus_queue_then_refuses() -> None:
    admission = Admission(max_queue=1)
    with admission.slot("m", concurrency=1), admission.slot("m", concurrency=1):
        assert admission.depth("m") == 2
        with pytest.raises(Overloaded) as info, admission.slot("m", concurrency=1):
            pass
        assert info.value.retry_after >= 1 and info.value.status_code == 503
        with admission.slot("other", concurrency=1):  # models are counted apart
            pass
    assert admission.depth("m") == 0
