"""A tiny PixArt-alpha (or -Sigma) pipeline with random weights, built offline for tests.

Every component is real diffusers/transformers code at toy size, saved with `save_pretrained`
(safetensors), so loaders see exactly the folder layout of a Hub checkpoint. The T5 tokenizer is a
Unigram vocabulary written here (characters plus a few words): no download, no sentencepiece file.
"""

from pathlib import Path

import torch

T5_DIM = 16  # d_model of the tiny T5 = the transformer's caption_channels
WORDS = ("chest", "x-ray", "pleural", "effusion", "cardiomegaly", "support", "devices", "view",
         "lesion", "melanoma", "hair", "ruler", "ink", "with", "a", "the", "of", "and", "showing")


def tiny_t5_tokenizer():
    from transformers import T5Tokenizer  # tokenizers-backed in transformers 5

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    chars = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-,.()'"))
    pieces = [("▁" + w, -2.0) for w in WORDS] + [("▁", -3.0)]
    pieces += [(c, -5.0) for c in chars] + [("▁" + c, -5.5) for c in chars]
    return T5Tokenizer(vocab=specials + pieces, extra_ids=0)


def build_tiny_pixart(kind: str = "alpha", seed: int = 0):
    """The pipeline object: 1 transformer block, 1-level VAE (factor 1), 1-layer T5."""
    from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, PixArtAlphaPipeline,
                           PixArtSigmaPipeline, PixArtTransformer2DModel)
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tokenizer = tiny_t5_tokenizer()
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=T5_DIM, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=0)).eval()
    transformer = PixArtTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1,
        cross_attention_dim=16, sample_size=8, patch_size=2, caption_channels=T5_DIM,
        norm_num_groups=4, use_additional_conditions=False)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,),
                        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=8)
    scheduler = DPMSolverMultistepScheduler()
    cls = {"alpha": PixArtAlphaPipeline, "sigma": PixArtSigmaPipeline}[kind]
    return cls(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
               scheduler=scheduler)


def save_tiny_pixart(folder: Path, kind: str = "alpha", seed: int = 0) -> Path:
    """Build and `save_pretrained` (safetensors) into `folder`; returns the folder."""
    build_tiny_pixart(kind, seed).save_pretrained(folder, safe_serialization=True)
    return Path(folder)
