"""Neural networks: the spike encoder and the latent-to-rates decoder."""

from pyrolf.nets.networks import SpikeEncoder, TransformerDecoder

__all__ = ["SpikeEncoder", "TransformerDecoder"]
