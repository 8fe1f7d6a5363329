"""The old release at work while migrations run: a thread of its short transactions, each
commit and each failed transaction counted, for the tests to assert that none failed."""

import threading
import time
from collections.abc import Callable
from typing import Self

from sqlalchemy.orm import Session

from support.database import engine_for


class OldCodeWriter:
    """Runs write(session, n) for n = 1, 2, ... in a transaction of its own each, pause
    seconds apart, for as long as the with block lasts. A write may return {key: value},
    kept in `written` once its transaction commits. failures holds each failed
    transaction's first line, headed by label(n) if given (the table it wrote, say).

    Entering waits for warm_up commits, so that the old code is at work before the
    migration starts; it stops waiting at the first failure (the caller shows it) or after
    warm_up_seconds, if given (a slow machine then shows in the commit count)."""

    def __init__(
        self,
        url: str,
        write: Callable[[Session, int], dict | None],
        *,
        warm_up: int,
        warm_up_seconds: float | None = None,
        pause: float,
        label: Callable[[int], str] | None = None,
    ):
        self.engine = engine_for(url)
        self.write, self.label, self.pause = write, label, pause
        self.warm_up, self.warm_up_seconds = warm_up, warm_up_seconds
        self.committed = 0
        self.written: dict = {}  # key -> the value its last committed write gave it
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + (self.warm_up_seconds or float("inf"))
        while self.committed < self.warm_up and not self.failures and time.monotonic() < deadline:
            time.sleep(0.005)
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.engine.dispose()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                with Session(self.engine) as session, session.begin():
                    wrote = self.write(session, n)
                self.written.update(wrote or {})
                self.committed += 1
            except Exception as error:  # noqa: BLE001 - every failure counts, the caller shows it
                message = str(error).splitlines()[0]
                self.failures.append(f"{self.label(n)}: {message}" if self.label else message)
            time.sleep(self.pause)
