"""Potentials ``U(z)`` whose negative gradient is the deterministic force on the latent position.

A latent position ``z`` of size ``D`` is read as ``C`` channels on a 1-D lattice of ``D / C`` sites,
``(..., D) -> (..., C, D / C)``. The coupled potentials couple a site only to itself and its two
neighbours (zero padding at both ends), so the force is local on the lattice: the oscillators' a
width-3 kernel of sites, the springs' a width-2 kernel of bonds (each site in two bonds);
:class:`FreeParticle` has no force.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def force(potential: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``-∇U(z)`` by autograd, same shape as ``z`` ``(..., D)``.

    The graph is kept (``create_graph``) whenever gradients are being recorded, so the potential's
    own parameters learn through the force; under ``torch.no_grad`` it returns a plain tensor.
    """
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        if not z.requires_grad:
            z = z.detach().requires_grad_()
        energy = potential(z).sum()
        (gradient,) = torch.autograd.grad(energy, z, create_graph=keep_graph)
    return -gradient


class _Lattice(nn.Module):
    """Shared reshaping of a latent vector into ``channels`` fields on a 1-D lattice."""

    def __init__(self, latent_dim: int, channels: int = 4):
        super().__init__()
        if channels < 1 or latent_dim % channels:
            raise ValueError(
                f"latent size {latent_dim} is not divisible by the {channels} lattice channels; "
                "choose a latent size that is a multiple of the channel count"
            )
        self.latent_dim = latent_dim
        self.channels = channels
        self.sites = latent_dim // channels

    def field(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., D) -> (N, C, S)`` with all leading dims flattened into ``N``."""
        return z.reshape(-1, self.channels, self.sites)

    def leading(self, z: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """Energies ``(N,)`` of :meth:`field`'s flattened rows back to ``z``'s leading dims
        ``(...,)``."""
        return energy.reshape(z.shape[:-1])


class _CoupledLattice(_Lattice):
    """A lattice whose channels are coupled by a learned ``(C, C, taps)`` kernel of unit-norm
    taps; ``quadratic``: its energy is a quadratic form, so its force is linear in ``z``."""

    taps = 3
    quadratic = True  # the force is linear: the dynamics may use it as a matrix

    def __init__(self, latent_dim: int, channels: int = 4):
        super().__init__(latent_dim, channels)
        self.weight = nn.Parameter(torch.randn(channels, channels, self.taps) / self.taps**0.5)

    @property
    def kernel(self) -> torch.Tensor:
        """Coupling kernel ``(C, C, taps)``, each filter of unit norm."""
        return self.weight / self.weight.norm(dim=-1, keepdim=True).clamp_min(1e-8)


class CoupledOscillators(_CoupledLattice):
    """The paper's potential: locally coupled harmonic oscillators.

    ``U(z) = Σ_sites (K ⋆ φ) · φ`` with ``φ`` the lattice field and ``K`` a learned
    ``(C, C, 3)`` convolution kernel whose 3 taps per channel pair are normalised to unit norm.
    ``U`` is quadratic in ``z``, so the force ``-∇U = -(K ⋆ φ + Kᵀ ⋆ φ)`` is linear.
    """

    bounded_below = False  # an indefinite quadratic form

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Energy ``(...,)`` of positions ``(..., D)``."""
        phi = self.field(z)
        coupled = F.conv1d(phi, self.kernel.to(phi.dtype), padding=1)
        return self.leading(z, (coupled * phi).sum(dim=(-2, -1)))

    def force_matrix(self, like: torch.Tensor) -> torch.Tensor:
        """``A`` ``(D, D)`` with ``-∇U(z) = z @ A``, in ``like``'s dtype and device, in closed form:
        the convolution maps ``z`` to ``z @ M`` (the rows of ``M`` are the convolved unit vectors),
        so ``U = z M zᵀ`` and ``A = -(M + Mᵀ)``: one convolution, where autograd's force on the
        unit vectors takes a convolution and its gradient."""
        eye = torch.eye(self.latent_dim, dtype=like.dtype, device=like.device)
        coupled = F.conv1d(self.field(eye), self.kernel.to(like.dtype), padding=1)
        matrix = coupled.reshape(self.latent_dim, self.latent_dim)
        return -(matrix + matrix.T)


class CoupledSprings(_CoupledLattice):
    """Locally coupled oscillators whose energy is bounded below: springs on the lattice's bonds.

    ``U(z) = ½ Σ_bonds |K ⋆ φ|²``, where each bond ``(i, i + 1)`` of the lattice (with the zero
    padding's bonds at both ends) stretches by ``K₀ φ_i + K₁ φ_{i+1}``, ``K`` a learned ``(C, C, 2)``
    kernel whose 2 taps per channel pair are normalised to unit norm. ``U ≥ 0``, so the force
    ``-∇U = z @ A`` with ``A = -M Mᵀ`` negative semi-definite: every mode of the deterministic
    flow oscillates or rests, none grows, while the force still couples each site only to itself
    and its two neighbours. :class:`CoupledOscillators`' ``Σ (K ⋆ φ) · φ`` is indefinite: its
    repulsive modes grow the flow geometrically over a long trial.
    """

    taps = 2
    bounded_below = True  # U >= 0

    def bonds(self, z: torch.Tensor) -> torch.Tensor:
        """Bond stretches ``(N, C, S + 1)`` of positions ``(..., D)`` (leading dims flattened)."""
        return F.conv1d(self.field(z), self.kernel.to(z.dtype), padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Energy ``(...,)`` of positions ``(..., D)``."""
        return self.leading(z, 0.5 * (self.bonds(z) ** 2).sum(dim=(-2, -1)))

    def force_matrix(self, like: torch.Tensor) -> torch.Tensor:
        """``A = -M Mᵀ`` ``(D, D)`` with ``-∇U(z) = z @ A``, the rows of ``M`` the bond stretches
        of the unit vectors; in ``like``'s dtype and device."""
        eye = torch.eye(self.latent_dim, dtype=like.dtype, device=like.device)
        matrix = self.bonds(eye).reshape(self.latent_dim, -1)
        return -(matrix @ matrix.T)


class AnharmonicOscillators(CoupledOscillators):
    """Coupled oscillators with a quartic on-site term: a nonlinear force.

    ``U(z) = Σ (K ⋆ φ) · φ + (λ / 4) Σ φ⁴`` with a learned stiffness ``λ = softplus(ρ) ≥ 0``; the
    quartic term confines large excursions (a Duffing-like hardening spring) and keeps the force local.
    """

    quadratic = False
    force_matrix = None  # the quartic term makes the force nonlinear
    bounded_below = True  # the quartic term outgrows the indefinite quadratic form

    def __init__(self, latent_dim: int, channels: int = 4, stiffness: float = 0.1):
        super().__init__(latent_dim, channels)
        self.raw_stiffness = nn.Parameter(torch.tensor(float(stiffness)).expm1().log())

    @property
    def stiffness(self) -> torch.Tensor:
        """``λ``, a scalar tensor."""
        return F.softplus(self.raw_stiffness)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Energy ``(...,)`` of positions ``(..., D)``."""
        quartic = (self.field(z) ** 4).sum(dim=(-2, -1))
        return super().forward(z) + self.stiffness.to(z.dtype) / 4 * self.leading(z, quartic)


class FreeParticle(nn.Module):
    """``U = 0``: no deterministic force; the velocity only decays and diffuses."""

    quadratic = True
    bounded_below = True

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Energy ``(...,)``, zero, of positions ``(..., D)`` (of their graph, so that the force
        autograd takes is zero too)."""
        return (z * 0).sum(-1)


POTENTIALS = {
    "oscillators": CoupledOscillators,
    "anharmonic": AnharmonicOscillators,
    "springs": CoupledSprings,
    "free": lambda latent_dim, channels=4: FreeParticle(),
}
