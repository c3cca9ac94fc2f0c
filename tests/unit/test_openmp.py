"""release_team ends the OpenMP team a torch pass leaves on its thread (the threads that
made llama.cpp's decode steps sleep in the kernel; see offramp.providers.openmp)."""

from __future__ import annotations

import os
import threading

import torch

from offramp.providers.openmp import release_team


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_a_torch_pass_leaves_a_team_and_release_team_ends_it() -> None:
    seen: dict[str, object] = {}

    def work() -> None:
        torch.set_num_threads(2)
        seen["before"] = _threads()
        torch.ones(1_000_000).mul_(2)  # parallel over OpenMP
        seen["after_pass"] = _threads()
        seen["released"] = release_team()
        seen["after_release"] = _threads()
        torch.ones(1_000_000).mul_(2)  # a later pass starts a team again and works
        seen["again"] = _threads()
        release_team()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen["after_pass"] > seen["before"]  # type: ignore[operator]
    assert seen["released"] is True
    assert seen["after_release"] == seen["before"]
    assert seen["again"] > seen["before"]  # type: ignore[operator]
