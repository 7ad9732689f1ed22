"""The modes of the linearised step: what dynamics.json reports, checked against closed forms."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from pyrolf.dynamics import (AnharmonicOscillators, CoupledOscillators, FreeParticle,
                             LangevinDynamics, OverdampedDynamics, force)
from pyrolf.dynamics.spectrum import (dynamics_spectrum, eigen_modes, potential_minimum,
                                      step_jacobian)


class Spring(nn.Module):
    """``U = k z² / 2`` on one dim: force ``-k z``."""

    quadratic = True

    def __init__(self, stiffness):
        super().__init__()
        self.stiffness = stiffness

    def forward(self, z):
        return 0.5 * self.stiffness * (z ** 2).sum(-1)


def test_free_particle_eigenvalues_are_one_and_one_minus_damping():
    damping, latent = 0.3, 4
    dynamics = LangevinDynamics(FreeParticle(), step=0.1, damping=damping)
    values = np.linalg.eigvals(step_jacobian(dynamics, torch.zeros(latent)))
    np.testing.assert_allclose(np.sort(values.real), [1 - damping] * latent + [1.0] * latent,
                               atol=1e-12)
    np.testing.assert_allclose(values.imag, 0, atol=1e-12)
    modes = eigen_modes(step_jacobian(dynamics, torch.zeros(latent)), bin_size=0.02)
    assert [m["decay_time"] for m in modes[:latent]] == [None] * latent  # neither grows nor decays
    for mode in modes[latent:]:
        assert mode["decay_time"] == pytest.approx(-0.02 / math.log(1 - damping))
        assert mode["frequency"] == 0


def test_oscillator_step_is_the_documented_block_matrix():
    torch.manual_seed(0)
    step, damping, latent = 0.05, 0.2, 8
    dynamics = LangevinDynamics(CoupledOscillators(latent, 2).double(), step=step, damping=damping)
    A = dynamics.force_matrix(torch.zeros(latent, dtype=torch.float64)).detach().numpy()
    eye = np.eye(latent)
    expected = np.block([[eye, step * eye],
                         [(1 - damping) * step * A.T, (1 - damping) * eye]])
    np.testing.assert_allclose(step_jacobian(dynamics, torch.randn(latent)), expected, atol=1e-12)


def test_damped_spring_mode_has_the_closed_form_frequency_and_decay():
    """J = [[1, Δ], [-(1-γ)Δk, 1-γ]]: |λ|² = det = (1-γ)(1+Δ²k), cos(arg λ) = tr / (2|λ|)."""
    step, damping, stiffness, bin_size = 0.1, 0.1, 20.0, 0.005
    dynamics = LangevinDynamics(Spring(stiffness), step=step, damping=damping)
    modes = eigen_modes(step_jacobian(dynamics, torch.zeros(1)), bin_size)
    magnitude = math.sqrt((1 - damping) * (1 + step ** 2 * stiffness))
    turn = math.acos((2 - damping) / (2 * magnitude))
    assert len(modes) == 2 and modes[0]["imag"] == pytest.approx(-modes[1]["imag"])
    for mode in modes:
        assert mode["magnitude"] == pytest.approx(magnitude)
        assert mode["frequency"] == pytest.approx(turn / (2 * math.pi) / bin_size)
        assert mode["decay_time"] == pytest.approx(-bin_size / math.log(magnitude))


def test_overdamped_free_step_keeps_positions_and_forgets_velocities():
    dynamics = OverdampedDynamics(FreeParticle(), step=0.1, damping=0.5)
    modes = eigen_modes(step_jacobian(dynamics, torch.zeros(3)))
    assert [m["magnitude"] for m in modes] == pytest.approx([1, 1, 1, 0, 0, 0])
    assert [m["decay_time"] for m in modes[3:]] == [0.0] * 3


def test_a_nonlinear_potential_is_linearised_at_a_minimum_where_the_force_vanishes():
    torch.manual_seed(1)
    potential = AnharmonicOscillators(8, 2, stiffness=0.5).double()
    dynamics = LangevinDynamics(potential, step=0.05, damping=0.3)
    start = torch.randn(8, dtype=torch.float64)
    minimum = potential_minimum(potential, start)
    assert force(potential, minimum).abs().max() < 1e-6
    assert potential(minimum) < potential(start)
    # the Jacobian there is the step's finite-difference derivative
    jacobian = step_jacobian(dynamics.double(), minimum)
    state, eps = torch.cat([minimum, torch.zeros(8, dtype=torch.float64)]), 1e-6
    columns = [(torch.cat(dynamics.drift(*(state + eps * e).split(8)))
                - torch.cat(dynamics.drift(*(state - eps * e).split(8)))) / (2 * eps)
               for e in torch.eye(16, dtype=torch.float64)]
    np.testing.assert_allclose(jacobian, torch.stack(columns, 1).detach().numpy(), atol=1e-6)
    report = dynamics_spectrum(dynamics, start.numpy()[None, None], bin_size=None)
    assert "minimum" in report["linearised_at"] and report["frequency_unit"] == "cycles per bin"
    assert len(report["modes"]) == 16
    assert report["spectral_radius"] == report["modes"][0]["magnitude"]


def test_the_jacobians_of_many_states_are_each_state_s_own():
    torch.manual_seed(2)
    dynamics = LangevinDynamics(AnharmonicOscillators(6, 2, stiffness=0.5), step=0.05,
                                damping=0.3)
    z, v = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    together = step_jacobian(dynamics, z, v)
    assert together.shape == (4, 12, 12)
    for k in range(4):  # the nonlinear force makes each state's Jacobian its own
        np.testing.assert_allclose(together[k], step_jacobian(dynamics, z[k], v[k]), atol=1e-12)
    assert np.abs(together[0] - together[1]).max() > 1e-3
