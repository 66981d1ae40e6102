"""The trainers' command-line options, and the checks of their values that need no model code.

Importable without torch: `train ... --help` answers at once, and a bad number or path is refused
in about a second, before the trainer is even imported. Each trainer repeats these checks when it
is called directly, then checks what needs its libraries (size presets, LoRA targets, the device).
"""

from pipelines.core.errors import MedEditError
from pipelines.data.attributes import ATTRIBUTE_NAMES
from pipelines.model.sizes import DIT_PRESETS, IMAGE_SIZE, VAE_PRESETS
from pipelines.training import checks
from pipelines.training.checks import SAFETENSORS_MODEL

DEVICES = ("auto", "cuda", "cpu")
CONDITIONINGS = ("separate", "joined")
PAIR_KEEPS = ("objects", "outside")
DIT_DETAIL_MASKS = ("opacity", "pacemaker", "gel_bubbles", "ruler")
DIT_PARTS = ("transformer", "projector")
NORMS = ("batch", "group")
PRECISIONS = ("no", "bf16", "fp16")
CLASSIFIER_SIZES = (32, 256)  # input sizes in pixels (evaluation/classifier.py: INPUT_SIZE_RANGE)
HELD_OUT_SEED = 10_000_000  # the classifier trains on seeds [seed, seed + n); its evaluation starts here


def add_device_argument(parser) -> None:
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="auto (a CUDA GPU when there is one), cuda or cpu")


def value_of(args, flag: str):
    return getattr(args, flag[2:].replace("-", "_"))


def check_common(args, whole_flags: tuple[str, ...], number_flags: tuple[str, ...],
                 folder_flags: tuple[str, ...]) -> None:
    """--seed, and the options named: whole numbers >= 1, finite numbers >= 0, folders to write."""
    for flag in whole_flags:
        checks.whole(flag, value_of(args, flag))
    for flag in number_flags:
        checks.number(flag, value_of(args, flag))
    checks.seed("--seed", args.seed)
    for flag in folder_flags:
        checks.writable_folder(flag, value_of(args, flag))


# ----------------------------------------------------------------------------------------- vae

def add_vae_arguments(parser):
    parser.add_argument("--preset", default="cpu", choices=VAE_PRESETS, help="size preset")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--crop", type=int, default=32, help="training crop in pixels")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n", type=int, default=4000, help="phantoms to train on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="runs/vae", help="checkpoints for --resume")
    parser.add_argument("--out", default="assets/mededit-default/vae")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--init", help="a VAE folder to fine-tune (default: a fresh one of --preset)")
    parser.add_argument("--detail-weight", type=float, default=0.0,
                        help="extra weight of the error on thin marks (0: off)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="phantom size in pixels (crops come from it)")
    parser.add_argument("--kl-weight", type=float, default=1e-6, help="weight of the latent's KL term")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds of training")
    add_device_argument(parser)


def check_vae_arguments(args) -> None:
    check_common(args, ("--steps", "--batch", "--crop", "--n", "--size"), ("--lr", "--detail-weight", "--kl-weight"),
                 ("--workdir", "--out"))
    if args.time_limit is not None:
        checks.number("--time-limit", args.time_limit)
    if args.init:
        checks.model_folder("--init", args.init)
    checks.choice("--device", args.device, DEVICES)


# ----------------------------------------------------------------------------------------- dit

def add_dit_arguments(parser):
    parser.add_argument("--preset", default="cpu", choices=DIT_PRESETS, help="size preset")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--n", type=int, default=16000, help="phantoms to train on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--align", type=float, default=0.1, help="alignment loss weight (0: off)")
    parser.add_argument("--conditioning", choices=CONDITIONINGS, default="separate",
                        help="ablation: 'joined' puts both prompts into one channel")
    parser.add_argument("--vae", default="assets/mededit-default/vae")
    parser.add_argument("--workdir", default="runs/dit", help="checkpoints for --resume")
    parser.add_argument("--out", default="assets/mededit-default")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--init", help="a model folder whose transformer and projector training continues "
                                       "from, with a fresh optimiser (default: new ones of --preset)")
    parser.add_argument("--ema", type=float, default=0.999, help="largest EMA decay (0 to 1)")
    parser.add_argument("--detail-weight", type=float, default=0.0,
                        help="extra weight of the error on --detail-masks (0: off)")
    parser.add_argument("--detail-masks", default=",".join(DIT_DETAIL_MASKS),
                        help="comma-separated phantom masks that --detail-weight weighs")
    parser.add_argument("--pair-weight", type=float, default=0.0,
                        help="weight of the counterfactual-partner term (0: off; see training/dit.py)")
    parser.add_argument("--pair-keep", choices=PAIR_KEEPS, default="objects",
                        help="where the partner term asks for the true noise (see training/dit.py)")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds of training")
    parser.add_argument("--text-tokens", type=int, default=None,
                        help="tokens read per caption channel (default: the text encoder's window; "
                             "phantom captions take up to 50)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE,
                        help="phantom size in pixels (the --vae's latents of it keep an 8x8 token grid)")
    parser.add_argument("--new-layers-lr-scale", type=float, default=1.0,
                        help="with an --init of a smaller patch: the learning rate of the widened patch "
                             "embedding and output layer, times --lr")
    parser.add_argument("--data-cache", default=None,
                        help="a folder where the phantoms' latents and encoded captions are kept between runs "
                             "(default: none)")
    parser.add_argument("--new-layers-alone", type=int, default=0,
                        help="with an --init of a smaller patch: steps at the start in which only the "
                             "widened layers learn")
    add_device_argument(parser)


def detail_mask_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in str(text).split(",") if name.strip())
    unknown = [name for name in names if name not in ATTRIBUTE_NAMES]
    if unknown or not names:
        raise MedEditError(f"--detail-masks {text!r}: name attributes among {', '.join(ATTRIBUTE_NAMES)}")
    return names


def check_dit_arguments(args) -> None:
    check_common(args, ("--steps", "--batch", "--n", "--size"),
                 ("--lr", "--align", "--detail-weight", "--pair-weight", "--new-layers-lr-scale"),
                 ("--workdir", "--out"))
    checks.whole("--new-layers-alone", args.new_layers_alone, low=0)
    if args.data_cache:
        checks.writable_folder("--data-cache", args.data_cache)
    checks.number("--ema", args.ema, 0.0, 1.0)
    if args.time_limit is not None:
        checks.number("--time-limit", args.time_limit)
    detail_mask_names(args.detail_masks)
    checks.choice("--conditioning", args.conditioning, CONDITIONINGS)
    checks.choice("--pair-keep", args.pair_keep, PAIR_KEEPS)
    checks.model_folder("--vae", args.vae)
    if args.init:
        checks.model_folder("--init", args.init, [f"{part}/{name}" for part in DIT_PARTS for name in SAFETENSORS_MODEL])
    checks.choice("--device", args.device, DEVICES)


# ---------------------------------------------------------------------------------- classifier

def add_classifier_arguments(parser):
    parser.add_argument("--n", type=int, default=12000, help="training phantoms (both modalities)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--widths", default="32,64,128,128", help="channels per conv stage")
    parser.add_argument("--norm", default="batch", choices=NORMS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-n", type=int, default=2000, help="held-out phantoms for evaluation")
    parser.add_argument("--workdir", default="runs/classifier", help="checkpoints for --resume")
    parser.add_argument("--out", default="assets/classifier")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--size", type=int, default=64,
                        help="input size in pixels (saved with the classifier); phantoms are rendered "
                             "at twice it and box-filtered down")
    parser.add_argument("--lesion-free", type=float, default=0.2,
                        help="share of dermoscopy phantoms drawn with no lesion, the negatives of the "
                             "'lesion' output (0: a classifier without that output)")
    parser.add_argument("--init", help="a trained classifier folder to fine-tune (its size, widths and norm; "
                                       "the lesion output is added where it has none)")
    parser.add_argument("--fp16", action="store_true", help="save the weights as float16 (half the file)")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds (--resume goes on)")


def classifier_widths(text) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in str(text).split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise MedEditError(f"--widths takes whole numbers >= 1 separated by commas, got {text!r}")
    return widths


def check_classifier_arguments(args) -> None:
    check_common(args, ("--n", "--steps", "--batch", "--eval-n"), ("--lr",), ("--workdir", "--out"))
    if args.seed + args.n > HELD_OUT_SEED:
        raise MedEditError(f"training seeds reach {args.seed + args.n}, into the held-out range "
                           f"starting at {HELD_OUT_SEED}")
    classifier_widths(args.widths)
    checks.choice("--norm", args.norm, NORMS)
    checks.whole("--size", args.size, *CLASSIFIER_SIZES)
    checks.number("--lesion-free", args.lesion_free, 0.0, 0.9)  # most must still show a lesion
    if args.time_limit is not None:
        checks.number("--time-limit", args.time_limit)
    if args.init:
        checks.model_folder("--init", args.init, ("model.safetensors", "config.json"))


# ---------------------------------------------------------------------------------------- lora

def add_lora_arguments(parser):
    parser.add_argument("--model", required=True, help="PixArt checkpoint: Hub repo id or local folder")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit to pin")
    parser.add_argument("--data", required=True, help="imagefolder: images + metadata.jsonl "
                        "(file_name, anatomy, style[, labels]); see `python -m pipelines convert`")
    parser.add_argument("--out", required=True, help="adapter folder to write")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: rank)")
    parser.add_argument("--targets", default="attn,ff,adaln",
                        help="LoRA targets: groups attn, ff, adaln and/or module names, comma-separated")
    parser.add_argument("--no-projector", action="store_true",
                        help="LoRA only: the channels stay plain T5 states, no HFFM projector")
    parser.add_argument("--projector-hidden", type=int, default=256, help="HFFM MLP width")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=4, help="images per process and step")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--align", type=float, default=0.1, help="alignment loss weight (0: off)")
    parser.add_argument("--hldf", type=float, default=0.0, help="HLDF colour loss weight (0: off)")
    parser.add_argument("--hldf-steps", type=int, default=4, help="sampler steps for the colour loss")
    parser.add_argument("--hldf-batch", type=int, default=2, help="images sampled for the colour loss")
    parser.add_argument("--guidance", type=float, default=4.5,
                        help="guidance of both channels in the colour-loss sampler")
    parser.add_argument("--mixed-precision", choices=PRECISIONS, default="no")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: OUT-checkpoint)")
    parser.add_argument("--resume", action="store_true", help="go on from the last checkpoint")


def lora_checkpoints(args) -> str:
    return args.checkpoints or f"{str(args.out).rstrip('/')}-checkpoint"


def check_lora_arguments(args) -> None:
    check_common(args, ("--steps", "--batch", "--rank", "--projector-hidden", "--hldf-steps", "--hldf-batch",
                        "--checkpoint-every"), ("--lr", "--align", "--hldf", "--guidance"), ("--out",))
    checks.writable_folder("--checkpoints", lora_checkpoints(args))
    if args.alpha is not None and checks.number("--alpha", args.alpha) == 0:
        raise MedEditError("--alpha must be above 0 (it scales the LoRA's update), got 0")
    checks.choice("--mixed-precision", args.mixed_precision, PRECISIONS)


OPTIONS = {
    "vae": (add_vae_arguments, check_vae_arguments),
    "dit": (add_dit_arguments, check_dit_arguments),
    "classifier": (add_classifier_arguments, check_classifier_arguments),
    "lora": (add_lora_arguments, check_lora_arguments),
}

