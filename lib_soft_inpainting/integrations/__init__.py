"""Adapters to other software, and the pieces every front end shares (the core needs none of them).

- :mod:`.workflow`: the host-independent pieces every front-end needs — the latent mask from a
  mask picture, the stage-1 blends (soft, and the host's hard one for comparison), stage 2 on
  decoded pictures. torch, numpy and PIL only.
- :mod:`.sampling`: a k-diffusion style Euler sampler over a Karras schedule that calls the
  stage-1 blend in the WebUI's hook order.
- :mod:`.infotext`: generation parameters in the WebUI's infotext format.
- :mod:`.diffusers_pipeline`: the adapter for diffusers' inpaint and img2img pipelines of Stable
  Diffusion, SDXL, SD3 and Flux (and Flux Fill). It imports diffusers, an optional extra
  (``pip install ".[diffusers]"``); nothing else here does.
- :mod:`.diffusers_flow`: its flow-matching part — which schedulers are flow matching (read from
  their forward process), the step on the blended prediction, Flux's packed latents. torch only.
"""
