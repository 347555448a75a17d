"""``onewindow serve`` with a profiler switched by signals, for bench/cpu_profile.py.

    python bench/profiled_gateway.py serve config.yaml --port 8000
    kill -USR1 <pid>    # start: cProfile on the serving thread's CPU time, and a count of asyncio tasks created
    kill -USR2 <pid>    # stop: stats to $ONEWINDOW_PROFILE_OUT (pstats), the task count to the same path + ".tasks"

Nothing is profiled until the first SIGUSR1, so the CPU time measured without profiling is the plain gateway's.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from gateway.cli import app


class _Switch:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.profile: cProfile.Profile | None = None
        self.tasks = 0
        self.factory: Any = None

    def start(self, signum: int, frame: FrameType | None) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = 0
        self.factory = loop.get_task_factory()

        def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            self.tasks += 1
            if self.factory is not None:
                task: asyncio.Task[Any] = self.factory(loop, coro, **kwargs)
                return task
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(counting)
        self.profile = cProfile.Profile(time.thread_time)
        self.profile.enable()

    def stop(self, signum: int, frame: FrameType | None) -> None:
        if self.profile is None:
            return
        self.profile.disable()
        asyncio.get_running_loop().set_task_factory(self.factory)
        self.profile.dump_stats(self.out)
        Path(f"{self.out}.tasks").write_text(str(self.tasks))
        self.profile = None


def main() -> None:
    switch = _Switch(Path(os.environ["ONEWINDOW_PROFILE_OUT"]))
    signal.signal(signal.SIGUSR1, switch.start)
    signal.signal(signal.SIGUSR2, switch.stop)
    sys.argv[0] = "onewindow"
    app()


if __name__ == "__main__":
    main()
