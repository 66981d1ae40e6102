"""How much memory reading the largest accepted uploads takes: `python scripts/upload_memory.py`.

Each case is a small file at a limit (40 megapixels of 16-bit grey; 128 MiB once decoded for RGB
and RGBA; a 64 MiB uncompressed 16-bit DICOM), read and fitted to the model's size in a fresh
process, as the app reads it; printed: the peak resident memory above that process's own after
its imports. The last case reads an image and two masks of its size, as /edit_image does.
"""

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.upload_files import dicom_bytes, dicom_dataset  # noqa: E402

CHILD = r"""
import json, sys, time
from pipelines.data.uploads import fit, fit_mask, read_image, read_mask
from pipelines.model.offered import model_image_size

def status_mb(key):  # VmRSS now, VmHWM its peak (this process's own: getrusage's counts the parent's)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))

def rss_mb():
    return status_mb("VmRSS")

image, masks = sys.argv[1], sys.argv[2:]
size = model_image_size()  # the default model's ($MEDEDIT_MODEL's first, else the embedded one)
base, began = rss_mb(), time.perf_counter()
decoded = read_image(image)
read = [read_mask(path) for path in masks]
fit(decoded, size), [fit_mask(mask, size) for mask in read]
peak = status_mb("VmHWM")
print(json.dumps({"above_mb": round(peak - base), "seconds": round(time.perf_counter() - began, 2),
                  "size": decoded.pixels.shape[:2]}))
"""


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=9)  # uint16: 16-bit grey
    return buffer.getvalue()


def cases() -> dict[str, bytes]:
    grey_side, rgb_side, dicom_side = 6324, 5792, 5790  # 40.0 MP; 127.98 MiB as RGBA; 63.9 MiB file
    ramp = (np.arange(grey_side, dtype=np.uint32) * 10 % 65536).astype(np.uint16)
    rgb = np.zeros((rgb_side, rgb_side, 3), np.uint8)
    rgb[..., 0] = (np.arange(rgb_side) % 256)[None, :]
    rgba = np.dstack([rgb, np.full((rgb_side, rgb_side), 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, format="JPEG", quality=90)
    stored = (np.arange(dicom_side * dicom_side, dtype=np.uint32).reshape(dicom_side, dicom_side) % 4096)
    return {"16-bit grey PNG, 40 MP": png(np.broadcast_to(ramp, (grey_side, grey_side)).copy()),
            "RGB JPEG, 33.5 MP": jpeg.getvalue(), "RGBA PNG, 33.5 MP": png(rgba),
            "16-bit DICOM, 33.5 MP": dicom_bytes(dicom_dataset(stored.astype(np.uint16), WindowCenter=2048,
                                                               WindowWidth=4096))}


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, data in cases().items():
            paths[name] = Path(folder) / f"{len(paths)}.bin"
            paths[name].write_bytes(data)
        runs = [(name, [paths[name]]) for name in paths]
        runs.append(("RGBA PNG + two RGBA masks, 33.5 MP", [paths["RGBA PNG, 33.5 MP"]] * 3))
        for name, files in runs:
            done = subprocess.run([sys.executable, "-c", CHILD, *map(str, files)], cwd=ROOT, capture_output=True,
                                  text=True, check=True)
            result = json.loads(done.stdout)
            size = files[0].stat().st_size
            rows.append({"case": name, "file_bytes": size, **result})
            print(f"{name:36s} file {size / 2**20:6.2f} MiB: +{result['above_mb']} MB, {result['seconds']} s")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
