"""``comfy.sampler_helpers``: the noise mask the sampler hands on."""

from . import utils


def prepare_mask(noise_mask, shape, device):
    return utils.reshape_mask(noise_mask, shape).to(device)
