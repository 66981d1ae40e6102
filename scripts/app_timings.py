"""Time the app as a client sees it, through gradio_client against a fresh `python app.py`.

    python scripts/app_timings.py [--model embedded] [--json]

1. launch to ready (the server answers), the first edit (the model loads), a re-edit at another
   swap point, the same request again (result cache);
2. the largest requests the server accepts (the most work under its budget: a latent series and an
   embedding series of 64 frames, and the export of the first), each alone;
3. two of them at once, and an /edit asked while both run.
Each request uses a seed of its own, so nothing comes from a cache unless meant to.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NEVUS = "a dermoscopic image with melanocytic nevus (NV), a medium-sized symmetric, evenly brown lesion in the centre"
SKIN = "light skin, even lighting"
EDIT = dict(anatomy=NEVUS, style=f"{SKIN}, no artifacts", to_style=f"{SKIN}, with hairs visible on skin",
            sliders="", swap_at=0.2, seed=7)


def largest_series(mode: str, seed: int) -> dict:
    """The most work of `mode` the server's budget accepts: 64 frames, unequal scales (three
    guidance branches), a local edit swapped at 0, as many steps as fit."""
    from app.serving import ServerLimits
    from pipelines.core.limits import CONTROL_POINTS_RANGE, FRAMES_RANGE, STEPS_RANGE
    from pipelines.editing.cost import request_work
    from pipelines.editing.requests import Edit, Sampling, Series
    budget = ServerLimits.from_env().request_budget
    frames, points = FRAMES_RANGE[1], CONTROL_POINTS_RANGE[1]
    fits = [steps for steps in range(STEPS_RANGE[0], STEPS_RANGE[1] + 1)
            if request_work(Sampling(NEVUS, SKIN, seed, steps, 3.0, 4.0), Edit(to_style="x", swap_at=0.0, locality=0.3),
                            Series(frames, mode, points), exported=mode == "latent").units <= budget]
    return dict(EDIT, seed=seed, steps=max(fits), swap_at=0.0, locality=0.3, anatomy_scale=3.0, style_scale=4.0,
                mode=mode, frames=frames, control_points=points)


def timed(fn, *args, **kwargs) -> tuple[float | str, object]:
    """Seconds and result; a refused or stopped request gives its message instead of seconds."""
    began = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - reported, the run goes on
        return f"after {time.perf_counter() - began:.1f} s: {str(error)[:80]}", None
    return round(time.perf_counter() - began, 2), result


def start_app(model: str) -> tuple[subprocess.Popen, str, float]:
    import httpx
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    began = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              env={**os.environ, "MEDEDIT_MODEL": model, "PORT": str(port)})
    url = f"http://127.0.0.1:{port}/"
    while True:
        if server.poll() is not None:
            raise SystemExit("the app stopped while starting")
        try:
            if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                return server, url, round(time.perf_counter() - began, 2)
        except httpx.HTTPError:
            time.sleep(0.1)


def interactive(client) -> dict:
    first, _ = timed(client.predict, **EDIT, api_name="/edit")
    again_swap, _ = timed(client.predict, **dict(EDIT, swap_at=0.3), api_name="/edit")
    same, _ = timed(client.predict, **dict(EDIT, swap_at=0.3), api_name="/edit")
    return {"first_edit_s": first, "re_edit_other_swap_s": again_swap, "same_request_again_s": same}


def largest_alone(client) -> dict:
    latent, embedding = largest_series("latent", 1001), largest_series("embedding", 1002)
    out = {"largest_latent": {k: latent[k] for k in ("frames", "steps", "control_points")},
           "largest_embedding": {k: embedding[k] for k in ("frames", "steps")}}
    out["latent_series_s"], _ = timed(client.predict, **latent, api_name="/series")
    out["embedding_series_s"], _ = timed(client.predict, **embedding, api_name="/series")
    exported = {k: v for k, v in latent.items() if k != "sliders"}
    exported["seed"] = 1003  # a fresh seed: the export computes the series too
    out["latent_export_s"], _ = timed(client.predict, json.dumps(exported), api_name="/export")
    return out


def largest_together_and_an_edit(url: str) -> dict:
    """Two of the largest at once (both heavy slots); an /edit asked once both are running."""
    from gradio_client import Client
    seconds, threads = {}, []
    for name, request in (("latent", largest_series("latent", 2001)), ("embedding", largest_series("embedding", 2002))):
        client = Client(url, verbose=False)

        def run(name=name, request=request, client=client):
            seconds[name + "_series_s"] = timed(client.predict, **request, api_name="/series")[0]

        threads.append(threading.Thread(target=run))
        threads[-1].start()
    time.sleep(3)  # both have started computing
    seconds["edit_while_both_run_s"], _ = timed(Client(url, verbose=False).predict, **dict(EDIT, seed=2003),
                                                api_name="/edit")
    for thread in threads:
        thread.join()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from gradio_client import Client
    server, url, ready = start_app(args.model)
    try:
        client = Client(url, verbose=False)
        report = {"launch_to_ready_s": ready, "threads": os.environ.get("OMP_NUM_THREADS", "torch default"),
                  **interactive(client), **largest_alone(client), "together": largest_together_and_an_edit(url),
                  "load_average": [round(x, 1) for x in os.getloadavg()]}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
