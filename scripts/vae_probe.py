"""The autoencoder's learning-curve probe: PSNR per modality and the classifier's accuracy on round
trips of held-out phantoms (pipelines/evaluation/reconstruction.py), for a saved VAE folder or the
newest checkpoint of a `train vae` run still in progress.

    python scripts/vae_probe.py --vae assets/mededit-256/vae --size 256 --json
    python scripts/vae_probe.py --checkpoints RUN_WORKDIR --preset f8 --size 256 \
        --append assets/mededit-256/learning_curve.json   # the model card's curve, a row per chunk
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.evaluation.classifier import load_classifier  # noqa: E402
from pipelines.evaluation.reconstruction import reconstruction_report  # noqa: E402
from pipelines.model.presets import make_vae  # noqa: E402
from pipelines.training.checkpoints import META_FILE, latest_checkpoint  # noqa: E402


def vae_of_checkpoint(folder: Path, preset: str, size: int) -> tuple[AutoencoderKL, int]:
    """The VAE weights of a run's newest checkpoint (accelerate saved the trained tensors as one
    module whose buffers are named 'vae/...'), and its step."""
    found = latest_checkpoint(folder)
    if found is None:
        raise SystemExit(f"no complete checkpoint under {folder}")
    vae = make_vae(preset, size)
    tensors = load_file(found / "model.safetensors")
    vae.load_state_dict({k.replace("/", ".")[len("vae."):]: v for k, v in tensors.items() if k.startswith("vae/")})
    return vae, json.loads((found / META_FILE).read_text())["step"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--vae", help="a saved VAE folder")
    source.add_argument("--checkpoints", help="a train vae --workdir")
    parser.add_argument("--preset", default="f8")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--n", type=int, default=64, help="held-out phantoms per modality")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--step", type=int, help="the training step a saved --vae folder is from (for its row)")
    parser.add_argument("--append", help="a JSON list to add this probe's row to (made if missing)")
    args = parser.parse_args()
    if args.vae:
        vae, step = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32), args.step
    else:
        vae, step = vae_of_checkpoint(Path(args.checkpoints), args.preset, args.size)
    report = {"step": step, **reconstruction_report(vae.eval(), args.size, args.n, load_classifier())}
    if args.append:
        rows = json.loads(Path(args.append).read_text()) if Path(args.append).exists() else []
        rows = [row for row in rows if row.get("part") != "vae" or row.get("step") != step]
        Path(args.append).parent.mkdir(parents=True, exist_ok=True)
        Path(args.append).write_text(json.dumps(rows + [{"part": "vae", **report}], indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for modality, row in report.items():
            if modality != "step":
                print(f"step {step} {modality}: PSNR {row['psnr']:.2f} dB (min {row['psnr_min']:.2f}), "
                      f"classifier accuracy {row['accuracy_original']:.3f} on originals, "
                      f"{row['accuracy_reconstructed']:.3f} on round trips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
