"""A server killed mid-request (kill -9, SIGTERM) leaves nothing of a patient behind: real
`python app.py` processes on 127.0.0.1, a real DICOM carrying identifiers, real signals. After a
kill -9 the next start removes every upload (whole or half received), private copy and result the
dead process left, and serves none of them; after SIGTERM nothing is left at all. The identifier scan reads every file's
bytes and name, and both servers' logs."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.upload_files import dicom_bytes, dicom_dataset, identifiers

gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
PATIENT = "DOE^JANE^SECRET123"
SOURCE = dict(anatomy="a chest X-ray", style="no devices", to_anatomy="", to_style="", sliders='{"pacemaker": 1}',
              swap_at=0.3, seed=0, anatomy_scale=3.0, style_scale=3.0, model="", locality=0.0, edit_mask=None,
              keep_mask=None, refresh=0.0)
LONG_SERIES = dict(SOURCE, steps=60, mode="embedding", frames=64, control_points=2, bend=0.0)


@pytest.fixture(scope="module")
def patient_dicom(tmp_path_factory):
    ds = dicom_dataset(np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (64, 1)), WindowCenter=2048,
                       WindowWidth=4096)
    ds.PatientName = PATIENT
    path = tmp_path_factory.mktemp("patient") / f"{PATIENT.replace('^', '_')}.dcm"  # the name identifies too
    path.write_bytes(dicom_bytes(ds))
    return path, [PATIENT, "SECRET123", path.name, *identifiers(ds)]


class Server:
    """`python app.py` on a free loopback port, its log kept in a file."""

    def __init__(self, model: Path, temp: Path, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "MEDEDIT_MODEL": str(model), "PORT": str(self.port), "GRADIO_TEMP_DIR": str(temp),
               "GRADIO_SERVER_NAME": "127.0.0.1", "MEDEDIT_REQUEST_BUDGET": str(10**9), "MEDEDIT_TIME_LIMIT": "600",
               "MEDEDIT_THREADS": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
        self.url = f"http://127.0.0.1:{self.port}/"
        end = time.monotonic() + 180
        while True:
            assert self.process.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(self.url + "gradio_api/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, "the app did not start"
            time.sleep(0.3)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=120)

    def served(self, path: str) -> int:
        """The HTTP status of asking this server for a file by its path."""
        return httpx.get(f"{self.url}gradio_api/file={path}", timeout=10).status_code


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def hits(folder: Path, logs: list[Path], secrets: list[str]) -> list[str]:
    """Every file under `folder` and every log holding an identifier (as bytes, as a name)."""
    found = []
    for path in files_under(folder) + logs:
        data = path.read_bytes()
        found += [f"{path}: {s}" for s in secrets if s.encode() in data or s in str(path)]
    return found


def stalled_upload(url: str, data: bytes, name: str, release: threading.Event) -> None:
    """An upload that sends half of its file and then waits (a client on a slow line) until
    `release`; gradio has written that half to a temporary file by then."""
    boundary = "mededit-stalled-upload"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()

    def body():
        yield head + data[: len(data) // 2]
        release.wait(120)

    def post():
        try:
            httpx.post(url + "gradio_api/upload", content=body(), timeout=130,
                       headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        except httpx.HTTPError:
            pass  # the server was killed under it

    threading.Thread(target=post, daemon=True).start()


def in_flight_copy(temp: Path, job) -> Path:
    """Until the request has claimed its upload (its private copy exists), while it still runs."""
    end = time.monotonic() + 120
    while not (copies := sorted(temp.glob("private-*/request-*/upload-*"))):
        assert not job.done(), "the request ended before the kill; make it longer"
        assert time.monotonic() < end, "the request never started"
        time.sleep(0.02)
    return copies[0]


def test_kill_9_restart_and_sigterm_leave_nothing_and_serve_nothing(micro_model_folder, patient_dicom, tmp_path):
    dicom, secrets = patient_dicom
    temp, logs = tmp_path / "gradio", [tmp_path / "first.log", tmp_path / "second.log"]
    upload = lambda: gradio_client.handle_file(str(dicom))  # noqa: E731
    release = threading.Event()
    first = Server(micro_model_folder, temp, logs[0])
    try:
        client = gradio_client.Client(first.url, verbose=False)
        # Phase 1: uploaded, no request yet.
        waiting = httpx.post(first.url + "gradio_api/upload", files={"files": (dicom.name, dicom.read_bytes())}).json()[0]
        # Phase 2: a finished edit's results, on disk and served.
        client.predict(upload(), **SOURCE, steps=4, api_name="/edit_image")
        results = sorted(temp.glob("served-*/mededit-results-*/*/*"))
        assert results and first.served(str(results[0])) == 200
        # Phase 3: an upload half received, and a series under way with its private copy: kill -9.
        stalled_upload(first.url, dicom.read_bytes(), dicom.name, release)
        end = time.monotonic() + 60
        while not (partial := [p for p in temp.glob("served-*/tmp*") if p.stat().st_size]):
            assert time.monotonic() < end, "the stalled upload never reached the disk"
            time.sleep(0.05)
        copy = in_flight_copy(temp, client.submit(upload(), **LONG_SERIES, api_name="/series_image"))
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        release.set()
        if first.process.poll() is None:
            first.process.kill()
    left = files_under(temp)
    assert Path(waiting) in left and copy in left and set(results) <= set(left) and set(partial) <= set(left)
    assert oct(copy.stat().st_mode & 0o777) == "0o600" and oct(copy.parent.stat().st_mode & 0o777) == "0o700"
    assert hits(temp, [], secrets), "the scan must see the killed server's upload"  # the scan can fail

    second = Server(micro_model_folder, temp, logs[1])
    try:
        remaining = files_under(temp)
        assert not set(left) & set(remaining), "the dead server's files survived the restart"
        assert all(p.name == ".owner.lock" for p in remaining), remaining  # only the new server's locks
        assert not hits(temp, logs, secrets)
        for path in [waiting, str(copy), *map(str, results + partial)]:
            assert second.served(path) in (403, 404), path  # gradio answers 403 for a file it lacks
        # SIGTERM with an upload waiting and a series under way: all removed as the server stops.
        client = gradio_client.Client(second.url, verbose=False)
        client.predict(upload(), **SOURCE, steps=4, api_name="/edit_image")
        waiting = httpx.post(second.url + "gradio_api/upload", files={"files": (dicom.name, dicom.read_bytes())}).json()[0]
        live_copy = in_flight_copy(temp, client.submit(upload(), **LONG_SERIES, api_name="/series_image"))
        assert second.served(str(live_copy)) == 403  # a request's private copy is never served
        assert Path(waiting).exists() and hits(temp, [], secrets)
        began = time.monotonic()
        assert second.stop(signal.SIGTERM) == 128 + signal.SIGTERM
        assert time.monotonic() - began < 60
    finally:
        if second.process.poll() is None:
            second.process.kill()
    assert files_under(temp) == []
    assert not hits(tmp_path, logs, secrets)
