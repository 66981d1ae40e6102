"""Another request holding the app's device: a thread in its turn until the test lets it go."""

import threading


class HeldDevice:
    """with HeldDevice(lane="heavy") as other: ... holds app.serving.device until the block ends (or
    other.release.set()); other.leaving is set just before it gives the device back, so a request
    that returned while it is unset did not wait for the device."""

    def __init__(self, lane: str = "light", seconds: float = 60):
        self.lane, self.seconds = lane, seconds
        self.holding, self.release, self.leaving = threading.Event(), threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self):
        from app import serving  # the app's modules load with the app fixture's settings

        with serving.device.turn(self.seconds, lane=self.lane):
            self.holding.set()
            self.release.wait(self.seconds)
            self.leaving.set()

    def __enter__(self) -> "HeldDevice":
        self.thread.start()
        assert self.holding.wait(10), "the other request never got the device"
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join()
