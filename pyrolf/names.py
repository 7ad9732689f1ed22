"""The named choices of the settings, without torch: what :class:`~pyrolf.config.Config` and the CLI
check a setting against before anything heavy is imported.

The registries that build each choice hold the same names, in the same order
(``tests/test_config.py`` keeps them alike): :data:`~pyrolf.dynamics.langevin.DYNAMICS` the
priors, :data:`~pyrolf.dynamics.potentials.POTENTIALS` the potentials, whose classes say
``quadratic`` as :data:`QUADRATIC` does and ``bounded_below`` as :data:`BOUNDED_BELOW` does,
and :data:`~pyrolf.guides.GUIDES` the guides;
:class:`~pyrolf.dynamics.langevin.LangevinDynamics` takes the :data:`INTEGRATORS`.
"""

#: the prior's dynamics: underdamped Langevin (the paper's) or overdamped
PRIORS = ("langevin", "overdamped")

#: every potential by name, and whether its energy is quadratic in ``z`` (its force is linear: the
#: scan integrator and the force matrix apply)
QUADRATIC = {"oscillators": True, "anharmonic": False, "springs": True, "free": True}

#: every potential by name, and whether its energy is bounded below (the overdamped prior's flow
#: stays finite only in such a potential)
BOUNDED_BELOW = {"oscillators": False, "anharmonic": True, "springs": True, "free": True}

#: the potentials' names, in the order the CLI lists them
POTENTIAL_NAMES = tuple(QUADRATIC)

#: how a trajectory is drawn: ``"loop"`` (bin by bin), ``"scan"`` (a parallel scan over the bins;
#: quadratic potentials) or ``"auto"`` (see :class:`~pyrolf.dynamics.langevin.LangevinDynamics`)
INTEGRATORS = ("auto", "loop", "scan")

#: the guides: the prior's transition plus a correction, or mean-field over time
GUIDE_NAMES = ("langevin", "meanfield")

#: where a flow trains and infers
DEVICES = ("cpu", "cuda")

#: how the latent sites are laid out: one trajectory site, or one Pyro site per bin
SITES = ("vectorised", "stepwise")

#: NLB's phases (``val``: train -> val, scored here; ``test``: train + val -> test) and bin sizes
NLB_PHASES = ("val", "test")
NLB_BIN_SIZES_MS = (5, 20)
