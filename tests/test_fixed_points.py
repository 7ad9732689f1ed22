"""The fixed points of the learned dynamics: a planted landscape recovered, closed forms for the
quadratic potentials, and what the maths demands of every point found."""

import numpy as np
import pytest
import torch
from torch import nn

from pyrolf.dynamics import AnharmonicOscillators, FreeParticle, LangevinDynamics, force
from pyrolf.dynamics.fixed_points import (fixed_points, gradient_and_hessian, merge,
                                          newton_steps, summary)
from pyrolf.dynamics.langevin import OverdampedDynamics
from pyrolf.dynamics.spectrum import potential_minimum


class Wells(nn.Module):
    """``U = Σ (z_i² - 1)² / 4``: in 2-D four minima at ``(±1, ±1)`` (energy 0), four saddles of
    index 1 at ``(0, ±1)`` and ``(±1, 0)`` (energy ¼) and a maximum at the origin (energy ½)."""

    quadratic = False

    def forward(self, z):
        return ((z ** 2 - 1) ** 2).sum(-1) / 4


class Quadratic(nn.Module):
    """``U = ½ z K zᵀ``, ``K = R diag(k) Rᵀ``: curvatures ``k`` along the columns of the rotation
    ``R`` (default the axes)."""

    quadratic = True

    def __init__(self, stiffness, rotation=None):
        super().__init__()
        stiffness = torch.as_tensor(stiffness, dtype=torch.float64)
        rotation = torch.eye(len(stiffness), dtype=torch.float64) if rotation is None else rotation
        self.register_buffer("matrix", rotation @ torch.diag(stiffness) @ rotation.T)

    def forward(self, z):
        return 0.5 * ((z @ self.matrix.to(z.dtype)) * z).sum(-1)


def grid(low=-1.5, high=1.5, points=7):
    axis = np.linspace(low, high, points)
    return np.stack(np.meshgrid(axis, axis), -1)  # (points, points, 2): any leading shape


@pytest.mark.parametrize("dynamics_class", [LangevinDynamics, OverdampedDynamics])
def test_the_planted_critical_points_of_two_double_wells_are_found_and_told_apart(dynamics_class):
    dynamics = dynamics_class(Wells(), step=0.05, damping=0.3)
    report = fixed_points(dynamics, grid())
    points = report["points"]
    assert report["starts"] == 50 and report["searches"] == 100
    assert sum(point["searches"] for point in points) == report["reached"] <= 100
    found = {tuple(np.round(point["position"], 6) + 0.0): point for point in points}
    assert len(found) == len(points) == 9  # nothing twice
    for position, point in found.items():
        ones = int(np.sum(np.abs(position) == 1))
        assert set(np.abs(position)) <= {0.0, 1.0}
        kind = {2: "minimum", 1: "saddle", 0: "maximum"}[ones]
        assert point["kind"] == kind and point["index"] == 2 - ones and point["dimension"] == 0
        assert point["energy"] == pytest.approx((2 - ones) / 4, abs=1e-12)
        # damped and with a small step a minimum attracts; a saddle or maximum repels
        assert point["stability"] == ("stable" if kind == "minimum" else "unstable")
        assert (point["spectral_radius"] < 1) == (kind == "minimum")
    assert [point["energy"] for point in points] == sorted(point["energy"] for point in points)
    assert summary(report) == "4 minima (4 stable), 4 saddles (0 stable), 1 maximum (0 stable)"


def test_starts_beside_a_maximum_still_find_the_wells_downhill():
    # straight Newton steps on ∇U = 0 from ±0.3 go to the maximum at 0; the descent finds ±1
    report = fixed_points(LangevinDynamics(Wells(), step=0.05, damping=0.3),
                          np.array([[0.3], [-0.3]]))
    assert sorted((point["kind"], round(point["position"][0], 8) + 0.0)
                  for point in report["points"]) == [
        ("maximum", 0.0), ("minimum", -1.0), ("minimum", 1.0)]


def test_every_point_found_on_a_nonlinear_lattice_is_critical_and_of_its_kind():
    torch.manual_seed(3)
    potential = AnharmonicOscillators(8, 2, stiffness=0.5).double()
    dynamics = LangevinDynamics(potential, step=0.05, damping=0.3)
    positions = 2 * torch.randn(40, 8, dtype=torch.float64)
    report = fixed_points(dynamics, positions.numpy(), starts=24)
    assert report["starts"] == 24 and report["points"]
    kinds = {point["kind"] for point in report["points"]}
    assert "minimum" in kinds and "saddle" in kinds  # the origin: the quadratic part is indefinite
    for point in report["points"]:
        at = torch.tensor(point["position"], dtype=torch.float64)
        assert force(potential, at).norm() <= 1e-8
        potential.requires_grad_(False)
        assert point["energy"] == pytest.approx(float(potential(at)), abs=1e-12)
        # a minimum is lowest among its neighbours; a saddle has a neighbour lower along its
        # most negative curvature and one higher along its most positive
        curvatures, directions = np.linalg.eigh(gradient_and_hessian(potential, at[None])[2][0])
        nearby = [float(potential(at + 1e-3 * torch.as_tensor(directions[:, i])))
                  for i in (0, -1)]
        if point["kind"] == "minimum":
            assert min(nearby) > point["energy"] and point["index"] == 0
        else:
            assert nearby[0] < point["energy"] < nearby[1]
            assert point["index"] == int((curvatures < 0).sum()) > 0
    # the minimum the spectrum is linearised at, downhill from the mean, is among them
    minimum = potential_minimum(potential, positions.mean(0)).numpy()
    assert min(np.linalg.norm(np.array(point["position"]) - minimum)
               for point in report["points"]) < 1e-5


def test_a_quadratic_potential_has_one_entry_its_null_space_in_closed_form():
    def point(stiffness, step=0.1, rotation=None):
        potential = Quadratic(stiffness, rotation)
        report = fixed_points(LangevinDynamics(potential, step=step, damping=0.2),
                              np.ones((3, len(stiffness))))
        assert report["searches"] == 0 and len(report["points"]) == 1
        only = report["points"][0]
        assert only["position"] == [0.0] * len(stiffness) and only["energy"] == 0
        return only

    well = point([1.0, 2.0, 0.5])
    assert (well["kind"], well["index"], well["dimension"], well["stability"]) == (
        "minimum", 0, 0, "stable")
    trough = point([1.0, 0.0, 0.0])  # a plane of fixed points: the flow neither leaves nor returns
    assert (trough["kind"], trough["dimension"], trough["stability"]) == ("minimum", 2, "marginal")
    # turned, the plane's zero curvatures come out of float rounding as ±1e-17: still flat
    rotation = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64,
                                           generator=torch.Generator().manual_seed(1)))[0]
    turned = point([1.0, 0.0, 0.0], rotation=rotation)
    assert (turned["kind"], turned["index"], turned["dimension"]) == ("minimum", 0, 2)
    pass_ = point([1.0, -1.0, 0.0])
    assert (pass_["kind"], pass_["index"], pass_["dimension"], pass_["stability"]) == (
        "saddle", 1, 1, "unstable")
    assert point([-1.0, -3.0])["kind"] == "maximum"
    # z' = z + Δ v, v' = (1 - γ)(v - Δ k z): |λ|² = det J = (1 - γ)(1 + Δ² k) where the
    # eigenvalues are complex, so past Δ² k = γ / (1 - γ) even a minimum repels
    step = (0.2 / (1 - 0.2)) ** 0.5
    assert point([1.0], step=0.99 * step)["stability"] == "stable"
    assert point([1.0], step=1.01 * step)["stability"] == "unstable"
    free = fixed_points(LangevinDynamics(FreeParticle(), step=0.1, damping=0.2), np.ones((2, 4)))
    assert summary(free) == "1 minimum (0 stable; sets of dimension 4)"


def test_newton_steps_reach_the_nearest_critical_point_and_descent_a_minimum():
    start = torch.tensor([[0.3, 0.0], [0.0, 0.2]], dtype=torch.float64)
    critical, norm = newton_steps(Wells(), start)  # |∇U| ≈ |z| near the maximum
    np.testing.assert_allclose(critical.numpy(), [[0.0, 0.0], [0.0, 0.0]], atol=1e-8)
    assert (norm <= 1e-8).all()
    start = torch.tensor([[0.3, -0.1], [-0.05, 0.2], [0.0, 0.2]], dtype=torch.float64)
    downhill, norm = newton_steps(Wells(), start, descend=True)
    # off the ridges to the well of its quadrant; on a ridge (z₁ = 0, which the flow keeps) to its
    # saddle, as the gradient flow goes
    np.testing.assert_allclose(downhill.numpy(), [[1.0, -1.0], [-1.0, 1.0], [0.0, 1.0]],
                               atol=1e-8)
    assert (norm <= 1e-8).all()


def test_the_hessian_rows_are_each_positions_own():
    stiffness = torch.tensor([1.0, -2.0, 3.0])
    z = torch.randn(5, 3, dtype=torch.float64)
    energy, gradient, hessian = gradient_and_hessian(Quadratic(stiffness), z)
    np.testing.assert_allclose(energy.numpy(), 0.5 * (stiffness.double() * z ** 2).sum(-1))
    np.testing.assert_allclose(gradient.numpy(), (stiffness.double() * z).numpy())
    np.testing.assert_allclose(hessian.numpy(), np.broadcast_to(np.diag(stiffness), (5, 3, 3)))
    _, _, flat = gradient_and_hessian(FreeParticle(), z)  # no curvature, no graph to follow
    assert not flat.any()


def test_merge_keeps_the_first_of_each_group_and_counts_it():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [1e-7, 0.0], [1.0, 2e-7], [5.0, 5.0]])
    distinct, counts = merge(points, 1e-6)
    np.testing.assert_array_equal(distinct, points[[0, 1, 4]])
    np.testing.assert_array_equal(counts, [2, 2, 1])
    empty, none = merge(points[:0], 1e-6)
    assert empty.shape == (0, 2) and none.size == 0

