"""The named choices of the latent dynamics, without torch: what :class:`~pyrolf.config.Config`
and the CLI check a setting against, before anything heavy is imported.

:data:`~pyrolf.dynamics.potentials.POTENTIALS` builds each potential named here, whose class says
``quadratic`` as :data:`QUADRATIC` does (``tests/test_dynamics.py`` holds the two alike), and
:class:`~pyrolf.dynamics.langevin.LangevinDynamics` takes the :data:`INTEGRATORS`.
"""

#: how a trajectory is drawn: ``"loop"`` (bin by bin), ``"scan"`` (a parallel scan over the bins;
#: quadratic potentials) or ``"auto"`` (see :class:`~pyrolf.dynamics.langevin.LangevinDynamics`)
INTEGRATORS = ("auto", "loop", "scan")

#: every potential by name, and whether its energy is quadratic in ``z`` (its force is linear: the
#: scan integrator and the force matrix apply)
QUADRATIC = {"oscillators": True, "anharmonic": False, "springs": True, "free": True}

#: the potentials' names, in the order the CLI lists them
POTENTIAL_NAMES = tuple(QUADRATIC)
