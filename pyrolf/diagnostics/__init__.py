"""Diagnostics of a fitted LangevinFlow: posterior draws as ArviZ data, importance-sampling
checks of the guide (Pareto k-hat, ELBO, IWELBO) and posterior predictive checks of spike counts.

- :mod:`~pyrolf.diagnostics.posterior`: draws from the guide, scored and simulated by the model;
- :mod:`~pyrolf.diagnostics.importance`: k-hat, ELBO and IWELBO of the log-weights;
- :mod:`~pyrolf.diagnostics.ppc`: spike-count statistics and predictive-interval coverage;
- :mod:`~pyrolf.diagnostics.arviz_adapter`: the one place that knows legacy ArviZ from 1.0;
- :mod:`~pyrolf.diagnostics.plots`, :mod:`~pyrolf.diagnostics.report`: figures and the run
  folder's ``posterior.nc`` and ``diagnostics.json``;
- :mod:`~pyrolf.diagnostics.summary`: every trial's posterior mean and interval, group by group;
  :mod:`~pyrolf.diagnostics.export`: them as ``inferred.nc``, on the coordinates of
  :mod:`~pyrolf.diagnostics.coords`; :mod:`~pyrolf.diagnostics.new_trials`: new trials laid out
  on a run's neurons, :mod:`~pyrolf.diagnostics.missing`: the counts they lack filled in.
"""

from pyrolf.diagnostics.importance import elbo, importance_summary, iwelbo, pareto_khat
from pyrolf.diagnostics.posterior import PosteriorSamples, sample_posterior
from pyrolf.diagnostics.ppc import coverage, fano_factor, mean_rate, ppc_summary, psth
from pyrolf.diagnostics.report import diagnose, select_trials

__all__ = ["PosteriorSamples", "coverage", "diagnose", "elbo", "fano_factor",
           "importance_summary", "iwelbo", "mean_rate", "pareto_khat", "ppc_summary", "psth",
           "sample_posterior", "select_trials"]
