"""What the checks found: one line per check, and the counts at the end."""


class Report:
    """Collects and prints check results; `failures` lists the messages that failed."""

    def __init__(self, quiet=False):
        self.counts = {"ok": 0, "fail": 0, "skip": 0}
        self.failures = []
        self.quiet = quiet

    def _line(self, text):
        if not self.quiet:
            print(text)

    def ok(self, message):
        self.counts["ok"] += 1
        self._line(f"ok   {message}")

    def fail(self, message, details=()):
        self.counts["fail"] += 1
        self.failures.append(message)
        self._line(f"FAIL {message}")
        for detail in details:
            self._line(f"       {detail}")

    def skip(self, message):
        self.counts["skip"] += 1
        self._line(f"skip {message}")

    def check(self, condition, message):
        """Records `message` as passed or failed; returns the condition."""
        (self.ok if condition else self.fail)(message)
        return bool(condition)

    def section(self, title):
        self._line(f"-- {title}")
