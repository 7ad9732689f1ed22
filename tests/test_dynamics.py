"""Properties the Langevin dynamics and the oscillator potentials owe to the maths."""

import math

import pytest
import torch

from pyrolf.dynamics import langevin
from pyrolf.dynamics.langevin import (LangevinDynamics, LangevinTrajectory, OverdampedDynamics,
                                      linear_scan)
from pyrolf.dynamics.potentials import (POTENTIALS, AnharmonicOscillators, CoupledOscillators,
                                       CoupledSprings,
                                        FreeParticle, force)
from pyrolf.dynamics.spectrum import step_jacobian

pytestmark = pytest.mark.usefixtures("float64")


def test_free_particle_without_noise_decays_by_one_minus_damping_and_z_integrates_v():
    step, damping = 0.1, 0.3
    dynamics = LangevinDynamics(FreeParticle(), step=step, damping=damping)
    z0, v0 = torch.randn(5, 8), torch.randn(5, 8)
    z, v = dynamics.integrate(z0, v0, torch.zeros(5, 12, 8))
    z, v = z[:, 1:], v[:, 1:]
    for t in range(1, 13):
        assert torch.allclose(v[:, t - 1], (1 - damping) ** t * v0)
        # z_t = z_0 + Δ Σ_{s<t} v_s, a geometric sum of the decaying velocity
        expected = z0 + step * v0 * (1 - (1 - damping) ** t) / damping
        assert torch.allclose(z[:, t - 1], expected)


@pytest.mark.parametrize("potential_class", [CoupledOscillators, AnharmonicOscillators,
                                             CoupledSprings])
def test_force_is_minus_finite_difference_gradient(potential_class):
    torch.manual_seed(0)
    potential = potential_class(latent_dim=12, channels=3).double()
    z = torch.randn(12)
    eps = 1e-6
    numeric = torch.stack([
        (potential(z + eps * e) - potential(z - eps * e)) / (2 * eps) for e in torch.eye(12)
    ])
    assert torch.allclose(force(potential, z), -numeric, atol=1e-7)


@pytest.mark.parametrize("potential_class", [CoupledOscillators, AnharmonicOscillators,
                                             CoupledSprings])
def test_force_is_local_on_the_lattice(potential_class):
    torch.manual_seed(1)
    channels, sites = 4, 7
    potential = potential_class(latent_dim=channels * sites, channels=channels).double()
    z = torch.randn(channels * sites)
    base = force(potential, z).reshape(channels, sites)
    for site in range(sites):
        for channel in range(channels):
            bumped = z.reshape(channels, sites).clone()
            bumped[channel, site] += 0.5
            changed = (force(potential, bumped.reshape(-1)).reshape(channels, sites) - base)
            moved_sites = set(torch.nonzero(changed.abs().amax(0) > 1e-12).flatten().tolist())
            assert moved_sites <= {site - 1, site, site + 1}
            assert site in moved_sites


def test_oscillator_kernel_taps_have_unit_norm_and_potential_is_quadratic():
    potential = CoupledOscillators(latent_dim=16, channels=4).double()
    assert torch.allclose(potential.kernel.norm(dim=-1), torch.ones(4, 4))
    z = torch.randn(3, 16)
    assert torch.allclose(potential(2.5 * z), 2.5**2 * potential(z))


def test_springs_are_bounded_below_and_their_flow_never_grows():
    """U = ½ Σ |K ⋆ φ|² ≥ 0 with unit-norm taps, so the force matrix is negative semi-definite
    and, at a step the stiffness allows, the deterministic Langevin step has spectral radius
    ≤ 1; the indefinite oscillators' flow grows (the posterior collapse of issue 14)."""
    torch.manual_seed(6)
    springs = CoupledSprings(latent_dim=32, channels=4).double()
    assert torch.allclose(springs.kernel.norm(dim=-1), torch.ones(4, 4))
    z = torch.randn(50, 32, dtype=torch.float64)
    assert (springs(z) >= 0).all()
    assert torch.allclose(springs(2.5 * z), 2.5**2 * springs(z))
    matrix = springs.force_matrix(z).detach()
    assert torch.allclose(matrix, matrix.T)
    assert torch.linalg.eigvalsh(matrix).max() <= 1e-10

    def radius(potential):
        dynamics = LangevinDynamics(potential, step=0.05, damping=0.2).double()
        a, keep, step = dynamics.force_matrix(z).detach(), 0.8, 0.05
        eye = torch.eye(32, dtype=torch.float64)
        # [z, v] -> [z + Δ v, (1 - γ)(v + Δ z A)] as a row-vector map
        step_map = torch.cat([torch.cat([eye, keep * step * a], 1),
                              torch.cat([step * eye, keep * eye], 1)])
        return torch.linalg.eigvals(step_map).abs().max().item()

    assert radius(springs) <= 1 + 1e-9
    torch.manual_seed(0)
    assert radius(CoupledOscillators(latent_dim=32, channels=4).double()) > 1.01


def test_force_keeps_the_graph_to_the_potential_parameters_only_when_recording():
    potential = CoupledOscillators(latent_dim=8, channels=2)
    z = torch.randn(4, 8)
    force(potential, z).sum().backward()
    assert potential.weight.grad is not None and potential.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert not force(potential, z).requires_grad


@pytest.mark.parametrize("dynamics_class", [LangevinDynamics, OverdampedDynamics])
def test_trajectory_log_prob_is_the_sum_of_step_by_step_transitions(dynamics_class):
    torch.manual_seed(2)
    dynamics = dynamics_class(CoupledSprings(8, 2), step=0.05, damping=0.4).double()
    z0, v0 = torch.randn(3, 8), torch.randn(3, 8)
    trajectory = LangevinTrajectory(dynamics, z0, v0, num_steps=9)
    v = trajectory.rsample()
    assert v.shape == (3, 9, 8)
    z, previous, total = z0, v0, torch.zeros(3)
    for t in range(9):
        z, velocity = dynamics.transition(z, previous)
        total = total + velocity.log_prob(v[:, t])
        previous = v[:, t]
    assert torch.allclose(trajectory.log_prob(v), total, rtol=1e-10)


@pytest.mark.parametrize("name", ["oscillators", "springs", "free", "anharmonic"])
def test_force_matrix_is_the_force_of_a_quadratic_potential_and_none_otherwise(name):
    torch.manual_seed(3)
    potential = POTENTIALS[name](8, 2).double()
    dynamics = LangevinDynamics(potential)
    z = torch.randn(5, 8)
    matrix = dynamics.force_matrix(z)
    if name == "anharmonic":
        assert matrix is None
        return
    assert torch.allclose(z @ matrix, force(potential, z), atol=1e-12)
    # and the potential's parameters learn through it as through the force itself
    parameters = list(potential.parameters())
    if parameters:
        weights = torch.randn(5, 8, dtype=torch.float64)
        through_matrix = torch.autograd.grad(((z @ matrix) * weights).sum(), parameters)
        through_force = torch.autograd.grad((force(potential, z) * weights).sum(), parameters)
        for a, b in zip(through_matrix, through_force):
            assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("potential_class", [CoupledOscillators, AnharmonicOscillators])
def test_integrate_follows_the_transition_mean_plus_the_innovation(potential_class):
    """``integrate`` is the transition's recursion with ``v_t = follow_t · mean + u_t``."""
    torch.manual_seed(4)
    dynamics = LangevinDynamics(potential_class(8, 2), step=0.05, damping=0.4).double()
    z0, v0, u = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 6, 8)
    follow = torch.tensor([[1.0], [1.0], [0.0], [0.0], [1.0], [1.0]])
    z, v = dynamics.integrate(z0, v0, u, follow)
    assert z.shape == v.shape == (3, 7, 8)
    for t in range(1, 7):
        z_next, velocity = dynamics.transition(z[:, t - 1], v[:, t - 1])
        assert torch.allclose(z[:, t], z_next)
        assert torch.allclose(v[:, t], follow[t - 1] * velocity.mean + u[:, t - 1])
    assert torch.allclose(z, dynamics.positions(z0, v))



@pytest.mark.parametrize("n_steps", [0, 1, 2, 5, 8, 13])
@pytest.mark.parametrize("shared", [True, False])
def test_linear_scan_is_the_recursion_bin_by_bin(n_steps, shared):
    """``x_t = x_{t-1} A_t + b_t`` written out one bin after another, for lengths that are and
    are not powers of two."""
    torch.manual_seed(6)
    x0, offsets = torch.randn(3, 2, 5), torch.randn(3, 2, n_steps, 5)
    matrices = torch.randn(5, 5) / 2 if shared else torch.randn(n_steps, 5, 5) / 2
    states = linear_scan(x0, matrices, offsets)
    assert states.shape == (3, 2, n_steps + 1, 5)
    x = x0
    assert torch.equal(states[..., 0, :], x0)
    for t in range(n_steps):
        x = x @ (matrices if shared else matrices[t]) + offsets[..., t, :]
        assert torch.allclose(states[..., t + 1, :], x, rtol=1e-10, atol=1e-10)


CASES = [(LangevinDynamics, "oscillators"), (LangevinDynamics, "springs"),
         (LangevinDynamics, "free"), (OverdampedDynamics, "springs"), (OverdampedDynamics, "free")]


@pytest.mark.parametrize("dynamics_class, name", CASES)
@pytest.mark.parametrize("mixed", [False, True])
def test_the_scan_integrator_draws_the_loops_trajectory_with_its_gradients(dynamics_class, name,
                                                                         mixed):
    """Same positions and velocities, and the same gradients to the start, the innovations, the
    potential and the learned Δ, γ; ``follow`` shared, or 0 and 1 by bin (the mean-field guide)."""
    torch.manual_seed(7)
    potential = POTENTIALS[name](8, 2)
    loop = dynamics_class(potential, step=0.05, damping=0.3, learn=True, integrator="loop")
    scan = dynamics_class(potential, step=0.05, damping=0.3, learn=True, integrator="scan")
    scan.load_state_dict(loop.state_dict())
    z0, v0 = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    u = torch.randn(4, 11, 8, requires_grad=True)
    follow = torch.tensor([[0.0]] * 6 + [[1.0]] * 5) if mixed else 1.0
    weights = torch.randn(2, 4, 12, 8)
    results = []
    for dynamics in (loop, scan):
        z, v = dynamics.integrate(z0, v0, u, follow)
        assert z.shape == v.shape == (4, 12, 8)
        parameters = [z0, v0, u, *dynamics.parameters()]
        loss = (weights[0] * z + weights[1] * v ** 2).sum()
        results.append((z, v, torch.autograd.grad(loss, parameters, allow_unused=True)))
    (z_loop, v_loop, grads_loop), (z_scan, v_scan, grads_scan) = results
    assert torch.allclose(z_scan, z_loop, atol=1e-10)
    assert torch.allclose(v_scan, v_loop, atol=1e-10)
    assert len(grads_loop) == len(grads_scan) > 3
    for a, b in zip(grads_loop, grads_scan):  # σ does not enter the trajectory: None in both
        assert (a is None) == (b is None)
        assert a is None or torch.allclose(a, b, atol=1e-9)
    assert sum(a is not None for a in grads_loop) >= 4  # z0, v0, u, Δ; γ too unless overdamped


@pytest.mark.parametrize("dynamics_class, name", CASES)
def test_the_scans_step_matrix_is_the_steps_jacobian(dynamics_class, name):
    """For a linear step, the matrix read off ``drift`` is its Jacobian (autograd, anywhere)."""
    torch.manual_seed(9)
    dynamics = dynamics_class(POTENTIALS[name](8, 2), step=0.05, damping=0.3)
    matrix = dynamics.step_matrices(torch.tensor(1.0), dynamics.terms(torch.zeros(8)))
    assert matrix.shape == (16, 16)
    jacobian = step_jacobian(dynamics, torch.randn(8), torch.randn(8))
    assert torch.allclose(matrix.T, torch.as_tensor(jacobian), atol=1e-10)


def test_auto_keeps_the_loop_on_the_cpu_and_for_a_nonlinear_force(monkeypatch):
    def no_scan(*args):
        raise AssertionError("the scan ran")

    monkeypatch.setattr(langevin, "linear_scan", no_scan)
    z0, v0, u = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 6, 8)
    for name in ("springs", "anharmonic"):
        z, v = LangevinDynamics(POTENTIALS[name](8, 2)).integrate(z0, v0, u)
        assert z.shape == (3, 7, 8)
    with pytest.raises(ValueError, match="quadratic potential"):
        LangevinDynamics(AnharmonicOscillators(8, 2), integrator="scan")
    scan = LangevinDynamics(CoupledSprings(8, 2), integrator="scan")
    with pytest.raises(ValueError, match="quadratic potential"):
        scan.potential = AnharmonicOscillators(8, 2)
    quartic = LangevinDynamics(AnharmonicOscillators(8, 2), integrator="loop")
    with pytest.raises(ValueError, match="quadratic potential"):
        quartic.integrator = "scan"
    assert quartic.integrator == "loop"
    with pytest.raises(ValueError, match="integrator must be one of"):
        LangevinDynamics(FreeParticle(), integrator="euler")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_auto_scans_and_draws_the_cpu_loops_trajectory(monkeypatch):
    torch.manual_seed(8)
    dynamics = LangevinDynamics(CoupledOscillators(8, 2), step=0.05, damping=0.3)
    z0, v0, u = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 20, 8)
    z_cpu, v_cpu = dynamics.integrate(z0, v0, u)
    calls = []
    monkeypatch.setattr(langevin, "linear_scan",
                        lambda *args: calls.append(1) or linear_scan(*args))
    z_gpu, v_gpu = dynamics.cuda().integrate(z0.cuda(), v0.cuda(), u.cuda())
    assert calls == [1]
    assert torch.allclose(z_gpu.cpu(), z_cpu, atol=1e-8)
    assert torch.allclose(v_gpu.cpu(), v_cpu, atol=1e-8)
    follow = torch.ones(20, 1, device="cuda")  # per-bin steps: the loop
    dynamics.integrate(z0.cuda(), v0.cuda(), u.cuda(), follow)
    assert calls == [1]


def test_overdamped_velocity_is_the_force_at_the_new_position_plus_noise():
    torch.manual_seed(5)
    potential = CoupledSprings(8, 2).double()
    dynamics = OverdampedDynamics(potential, step=0.1, damping=0.3)
    z, v = torch.randn(4, 8), torch.randn(4, 8)
    z_next, velocity = dynamics.transition(z, v)
    assert torch.allclose(z_next, z + 0.1 * v)
    assert torch.allclose(velocity.mean, force(potential, z + 0.1 * v))
    assert torch.allclose(velocity.stddev, torch.full((4, 8), math.sqrt(0.6)))
    # free potential: positions are a Gaussian random walk; over bins 0..9 the last position
    # sums the random velocities v_1..v_8: z_9 - z_0 - Δ v_0 ~ Normal(0, 8 Δ² σ²)
    walk = OverdampedDynamics(FreeParticle(), step=0.5, damping=0.5)  # σ = 1
    z0, v0 = torch.zeros(20000, 1), torch.zeros(20000, 1)
    v = LangevinTrajectory(walk, z0, v0, num_steps=9).rsample()
    z_end = walk.positions(z0, torch.cat([v0.unsqueeze(1), v], 1))[:, -1]
    assert z_end.mean().abs() < 0.05
    assert z_end.var().item() == pytest.approx(8 * 0.25, rel=0.05)
    # a potential not bounded below is refused, in one line, as the settings refuse it
    with pytest.raises(ValueError, match="the overdamped prior diverges in CoupledOscillators, "
                                         "whose energy is not bounded below"):
        OverdampedDynamics(CoupledOscillators(8, 2))
    # and so is one put in later, which leaves the potential it had
    springs = CoupledSprings(8, 2)
    walk = OverdampedDynamics(springs)
    with pytest.raises(ValueError, match="not bounded below"):
        walk.potential = CoupledOscillators(8, 2)
    assert walk.potential is springs


def test_transition_density_by_hand_for_one_free_step():
    dynamics = LangevinDynamics(FreeParticle(), step=0.1, damping=0.5).double()
    z, v, v_next = torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[0.3]])
    z_next, velocity = dynamics.transition(z, v)
    sigma2 = 2 * 0.5  # default noise variance 2γ
    mean = (1 - 0.5) * 2.0
    expected = -0.5 * math.log(2 * math.pi * sigma2) - (0.3 - mean) ** 2 / (2 * sigma2)
    assert z_next.item() == pytest.approx(1.2)
    assert velocity.log_prob(v_next).item() == pytest.approx(expected)


def test_bad_lattice_and_dynamics_settings_are_refused():
    with pytest.raises(ValueError, match="not divisible"):
        CoupledOscillators(latent_dim=10, channels=4)
    with pytest.raises(ValueError, match="damping"):
        LangevinDynamics(FreeParticle(), damping=1.5)


def test_learned_step_damping_and_noise_recover_those_that_simulated_the_motion():
    """Trajectories simulated with Δ = 0.08, γ = 0.1, σ = 0.5 in a fixed springs potential: the
    transition density's maximum likelihood over a learned Δ, γ, σ, started from pyrolf's
    defaults (0.05, 0.2, √0.4), lands on the simulating values."""
    torch.manual_seed(0)
    potential = CoupledSprings(latent_dim=8, channels=2).requires_grad_(False)
    truth = LangevinDynamics(potential, step=0.08, damping=0.1, noise_scale=0.5)
    z, v = [torch.randn(512, 8) * 3], [torch.randn(512, 8)]
    with torch.no_grad():
        for _ in range(30):
            z_next, velocity = truth.transition(z[-1], v[-1])
            z.append(z_next)
            v.append(velocity.sample())
    z, v = torch.stack(z, 1), torch.stack(v, 1)
    learned = LangevinDynamics(potential, step=0.05, damping=0.2, learn=True).double()
    trained = dict((name, p) for name, p in learned.named_parameters() if p.requires_grad)
    assert set(trained) == {"log_step", "logit_damping", "log_noise_scale"}
    optimizer = torch.optim.Adam(trained.values(), lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        _, velocity = learned.transition(z[:, :-1], v[:, :-1])
        (-velocity.log_prob(v[:, 1:]).mean()).backward()
        optimizer.step()
    for name, expected in (("step", 0.08), ("damping", 0.1), ("noise_scale", 0.5)):
        assert getattr(learned, name).item() == pytest.approx(expected, rel=0.05), name
    fixed = LangevinDynamics(potential, step=0.05, damping=0.2)
    assert not [p for p in fixed.parameters() if p.requires_grad]


def test_every_potential_can_be_imported_from_pyrolf_dynamics():
    import pyrolf.dynamics

    classes = {type(make(8, 4)) for make in POTENTIALS.values()}
    assert {cls.__name__ for cls in classes} <= set(pyrolf.dynamics.__all__)
    assert all(getattr(pyrolf.dynamics, cls.__name__) is cls for cls in classes)


def test_the_initial_state_is_standard_normal_in_each_dimension():
    """(A mutation audit: its scale was never checked.)"""
    import pyro

    from pyrolf.dynamics.prior import initial_state

    trace = pyro.poutine.trace(initial_state).get_trace("z_0", torch.zeros(1), 3, 4)
    site = trace.nodes["z_0"]
    assert site["value"].shape == (3, 4)
    value = torch.tensor([[0.0, 1.0, -2.0, 0.5]])
    # log N(x; 0, 1) summed over the 4 dimensions, by hand
    expected = sum(-0.5 * x * x - 0.5 * math.log(2 * math.pi) for x in (0.0, 1.0, -2.0, 0.5))
    assert site["fn"].log_prob(value.expand(3, 4)).tolist() == pytest.approx([expected] * 3,
                                                                               rel=1e-6)


def test_the_anharmonic_energy_adds_a_quarter_of_its_stiffness_times_the_fields_fourth_powers():
    """(A mutation audit: the documented ``(λ / 4) Σ φ⁴`` was never checked; ``λ / 2`` passed.)
    Two stiffnesses on one kernel differ by ``(a - b) / 4 · Σ φ⁴``, and no stiffness leaves the
    coupled oscillators' energy."""
    torch.manual_seed(0)
    potential = AnharmonicOscillators(8, 2, stiffness=0.3).double()
    z = torch.randn(5, 8, dtype=torch.float64)
    fourth = (potential.field(z) ** 4).sum(dim=(-2, -1))
    energy = {}
    for stiffness in (0.3, 1.1, 0.0):
        with torch.no_grad():
            potential.raw_stiffness.fill_(math.log(math.expm1(stiffness)) if stiffness else -60.0)
        energy[stiffness] = potential(z)
    torch.testing.assert_close(energy[1.1] - energy[0.3], (1.1 - 0.3) / 4 * fourth)
    torch.testing.assert_close(energy[0.0], CoupledOscillators.forward(potential, z))
