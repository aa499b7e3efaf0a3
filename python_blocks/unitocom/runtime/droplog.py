"""Rate-limited warnings for blocks that drop bad input.

A flood of bad samples must not become a flood of log lines: the first
``burst`` messages are logged, then one in every ``every``, each with the
running count, so nothing is dropped silently and the log stays readable.
"""


class DropLog:
    def __init__(self, logger, burst=10, every=1000):
        self._logger = logger
        self._burst = burst
        self._every = every
        self.count = 0
        self._once = set()

    def warn(self, message):
        self.count += 1
        if self.count <= self._burst or self.count % self._every == 0:
            suffix = "" if self.count < self._burst else f" (problem #{self.count}; further ones are logged 1 in {self._every})"
            self._logger.warn(message + suffix)

    def warn_once(self, message):
        """Log ``message`` the first time only (a state, not a drop: not counted)."""
        if message not in self._once:
            self._once.add(message)
            self._logger.warn(message)

    def drain(self, messages):
        """Log and clear a list of messages collected by a helper."""
        for message in messages:
            self.warn(message)
        messages.clear()
