"""Tiny random Stable Diffusion (and XL) pipelines built in code: nothing is downloaded.

Random weights make meaningless pictures, but every tensor takes the path a real model's does
(text encoder, UNet with cross-attention, VAE, scheduler), so the adapter is tested end to end.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

TEXT_WIDTH = 16
MAX_TOKENS = 16


def tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer over single letters (no merges): enough to encode any lower-case prompt.

    Read from files, the one constructor that transformers 4 and 5 share.
    """
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in string.ascii_lowercase:
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        Path(folder, "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=MAX_TOKENS)


def _text_config(projection_dim: int | None = None) -> CLIPTextConfig:
    extra = {} if projection_dim is None else {"projection_dim": projection_dim}
    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=TEXT_WIDTH,
                          intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
                          vocab_size=64, max_position_embeddings=MAX_TOKENS, **extra)


def tiny_vae() -> AutoencoderKL:
    """Two blocks: 2x down-sampling, 4 latent channels; float32 throughout (no SDXL up-casting)."""
    return AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2,
                         norm_num_groups=4, sample_size=32, force_upcast=False)


def tiny_unet(in_channels: int = 4, cross_attention_dim: int = TEXT_WIDTH, **extra) -> UNet2DConditionModel:
    return UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16,
                                in_channels=in_channels, out_channels=4, norm_num_groups=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=cross_attention_dim, attention_head_dim=2, **extra)


def tiny_scheduler() -> EulerDiscreteScheduler:
    """Stable Diffusion's noise schedule."""
    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  steps_offset=1)


def tiny_sd(kind: str = "inpaint", unet_channels: int = 4, seed: int = 0):
    """A tiny SD 1.x pipeline: ``kind`` is "inpaint" or "img2img"."""
    torch.manual_seed(seed)
    parts = dict(vae=tiny_vae(), text_encoder=CLIPTextModel(_text_config()), tokenizer=tiny_tokenizer(),
                 unet=tiny_unet(unet_channels), scheduler=tiny_scheduler(), safety_checker=None,
                 feature_extractor=None, requires_safety_checker=False)
    cls = StableDiffusionInpaintPipeline if kind == "inpaint" else StableDiffusionImg2ImgPipeline
    pipe = cls(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl(kind: str = "inpaint", seed: int = 0):
    """A tiny SDXL pipeline (two text encoders, size/crop conditioning)."""
    torch.manual_seed(seed)
    time_dim = 8
    unet = tiny_unet(4, cross_attention_dim=2 * TEXT_WIDTH, addition_embed_type="text_time",
                     addition_time_embed_dim=time_dim,
                     projection_class_embeddings_input_dim=TEXT_WIDTH + 6 * time_dim)
    parts = dict(vae=tiny_vae(), text_encoder=CLIPTextModel(_text_config()), tokenizer=tiny_tokenizer(),
                 text_encoder_2=CLIPTextModelWithProjection(_text_config(projection_dim=TEXT_WIDTH)),
                 tokenizer_2=tiny_tokenizer(), unet=unet, scheduler=tiny_scheduler())
    cls = StableDiffusionXLInpaintPipeline if kind == "inpaint" else StableDiffusionXLImg2ImgPipeline
    pipe = cls(**parts, requires_aesthetics_score=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# Flow-matching pipelines (SD3, Flux): 16 latent channels, VAE latents scaled as
# (z - shift_factor) * scaling_factor, a FlowMatchEulerDiscreteScheduler.
FLOW_CHANNELS = 16


def tiny_flow_vae() -> AutoencoderKL:
    """The tiny VAE with 16 latent channels and a shift, as SD3's and Flux's VAEs have."""
    return AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3,
                         latent_channels=FLOW_CHANNELS, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4, sample_size=32,
                         force_upcast=False, use_quant_conv=False, use_post_quant_conv=False,
                         scaling_factor=1.5, shift_factor=0.1)


def tiny_sd3(kind: str = "inpaint", transformer_channels: int = FLOW_CHANNELS, seed: int = 0,
             t5: bool = False):
    """A tiny SD3 pipeline: two CLIP text encoders, a one-layer MMDiT; T5 off (as SD3 allows)
    unless ``t5`` (a tiny T5 read through the letter tokenizer: a folder saved with it loads).

    ``transformer_channels=33`` makes an inpainting transformer (mask and masked picture as
    conditioning) for the inpaint pipeline.
    """
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Img2ImgPipeline,
        StableDiffusion3InpaintPipeline,
    )

    torch.manual_seed(seed)
    heads, head_dim = 2, 8
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=transformer_channels,
                                        out_channels=FLOW_CHANNELS, num_layers=1, attention_head_dim=head_dim,
                                        num_attention_heads=heads, joint_attention_dim=2 * TEXT_WIDTH,
                                        caption_projection_dim=heads * head_dim,
                                        pooled_projection_dim=2 * TEXT_WIDTH, pos_embed_max_size=32)
    parts = dict(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                 vae=tiny_flow_vae(),
                 text_encoder=CLIPTextModelWithProjection(_text_config(projection_dim=TEXT_WIDTH)),
                 tokenizer=tiny_tokenizer(),
                 text_encoder_2=CLIPTextModelWithProjection(_text_config(projection_dim=TEXT_WIDTH)),
                 tokenizer_2=tiny_tokenizer(), text_encoder_3=_tiny_t5(2 * TEXT_WIDTH) if t5 else None,
                 tokenizer_3=tiny_tokenizer() if t5 else None)
    cls = StableDiffusion3InpaintPipeline if kind == "inpaint" else StableDiffusion3Img2ImgPipeline
    pipe = cls(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_t5(width: int = TEXT_WIDTH):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=64, d_model=width, d_kv=8, d_ff=32, num_layers=1,
                                   num_heads=2, relative_attention_num_buckets=8, pad_token_id=1,
                                   decoder_start_token_id=0))


def tiny_flux(kind: str = "inpaint", seed: int = 0):
    """A tiny Flux pipeline: ``kind`` is "inpaint", "img2img" or "fill" (Flux Fill's conditioned
    transformer). The T5 slot holds a tiny T5 encoder read through the tiny letter tokenizer."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxImg2ImgPipeline,
        FluxInpaintPipeline,
        FluxTransformer2DModel,
    )

    torch.manual_seed(seed)
    vae = tiny_flow_vae()
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    packed = FLOW_CHANNELS * 4
    # Fill: the latent, the masked picture's latent and the mask (scale x scale per latent pixel), packed
    in_channels = 2 * packed + 4 * scale * scale if kind == "fill" else packed
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=in_channels, out_channels=packed,
                                         num_layers=1, num_single_layers=1, attention_head_dim=8,
                                         num_attention_heads=2, joint_attention_dim=TEXT_WIDTH,
                                         pooled_projection_dim=TEXT_WIDTH, guidance_embeds=kind == "fill",
                                         axes_dims_rope=(2, 2, 4))
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=16, max_image_seq_len=256)
    parts = dict(transformer=transformer, scheduler=scheduler, vae=vae,
                 text_encoder=CLIPTextModel(_text_config()), tokenizer=tiny_tokenizer(),
                 text_encoder_2=_tiny_t5(), tokenizer_2=tiny_tokenizer())
    cls = {"inpaint": FluxInpaintPipeline, "img2img": FluxImg2ImgPipeline, "fill": FluxFillPipeline}[kind]
    pipe = cls(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe
