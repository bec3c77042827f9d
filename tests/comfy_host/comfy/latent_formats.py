"""``comfy.latent_formats``: the model's latent scale (LATENTs hold unscaled VAE latents)."""


class LatentFormat:
    scale_factor = 1.0
    latent_rgb_factors = None

    def process_in(self, latent):
        return latent * self.scale_factor

    def process_out(self, latent):
        return latent / self.scale_factor


class SD15(LatentFormat):
    def __init__(self, scale_factor=0.18215):
        self.scale_factor = scale_factor
