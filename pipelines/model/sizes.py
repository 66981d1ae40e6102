"""The embedded model's named sizes as plain tables (no torch), so a command line can check a
preset name before anything heavy loads; presets.py builds the models from them."""

IMAGE_SIZE = 64
# 8 latent channels at f4 (16x16x8): 4 channels lost thin strokes (hair, ruler ticks, ink, leads).
LATENT_CHANNELS = 8
TEXT_DIM = 384  # all-MiniLM-L6-v2
TOKEN_GRID = 8  # the DiT's image tokens per side at every size: 64 tokens
# Stable Diffusion's betas: alpha_bar ends near 5e-3, unlike squaredcos_cap_v2's 1e-8, which
# turns DPM-Solver++'s first x0 estimate into noise (DESIGN.md, traps found by measuring).
NOISE_SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="scaled_linear",
                      beta_start=0.00085, beta_end=0.012)

VAE_PRESETS = {
    "micro": dict(block_out_channels=(8, 16, 16), layers_per_block=1, norm_num_groups=8),
    "micro-f8": dict(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8),  # tests at 256 px
    "cpu": dict(block_out_channels=(32, 64, 128), layers_per_block=1, norm_num_groups=16),
    # f8 for 256 px (256 -> 32x32x8, so a patch-4 DiT keeps its 64 tokens): thin full-resolution
    # layers, which dominate a CPU decode (DESIGN.md, resolution without CPU cost).
    "f8": dict(block_out_channels=(16, 32, 64, 128), layers_per_block=1, norm_num_groups=8),
}

DIT_PRESETS = {
    "micro": dict(num_layers=2, num_attention_heads=2, attention_head_dim=16),
    "cpu": dict(num_layers=6, num_attention_heads=6, attention_head_dim=32),
    "gpu": dict(num_layers=8, num_attention_heads=6, attention_head_dim=64),
}
