"""The command-line options that override one setting of :class:`~pyrolf.config.Config` each,
shared by ``pyrolf fit`` and ``pyrolf sweep``."""

from __future__ import annotations

import click

from pyrolf.data.dandi import DATA_DIR_ENV, DEFAULT_DATA_DIR
from pyrolf.names import DEVICES, GUIDE_NAMES, NLB_PHASES, POTENTIAL_NAMES, PRIORS, SITES

# Options that override one Config field each; None means "keep the preset / config file value".
OVERRIDES = {
    "epochs": click.option("--epochs", type=click.IntRange(min=1), help="Training epochs."),
    "device": click.option("--device", type=click.Choice(DEVICES),
                           help="Where to train (with --resume: where to go on)."),
    "seed": click.option("--seed", type=int, help="Seed of initialisation, batches and sampling."),
    "prior": click.option("--prior", type=click.Choice(PRIORS),
                          help="Latent dynamics: underdamped Langevin (paper) or overdamped."),
    "potential": click.option("--potential", type=click.Choice(POTENTIAL_NAMES),
                              help="Potential of the Langevin prior (default springs)."),
    "guide": click.option("--guide", type=click.Choice(GUIDE_NAMES),
                          help="Variational posterior."),
    "sites": click.option("--sites", type=click.Choice(SITES),
                          help="One trajectory site (fast) or one Pyro site per bin."),
    "lr": click.option("--lr", type=float, help="Initial learning rate."),
    "kl_weight": click.option("--kl-weight", type=click.FloatRange(min=0, min_open=True),
                              help="Final weight of the KL terms (default 0.1; 1: the exact "
                                   "ELBO; lower it where the latents collapse)."),
    "batch_size": click.option("--batch-size", type=click.IntRange(min=1), help="Trials per step."),
    "latent_dim": click.option("--latent-dim", type=click.IntRange(min=1),
                               help="Latent size D (a multiple of the lattice channels)."),
    "data_dir": click.option("--data-dir", help="NLB: folder holding the DANDI downloads "
                             f"(default ${DATA_DIR_ENV}, else {DEFAULT_DATA_DIR})."),
    "bin_size_ms": click.option("--bin", "bin_size_ms", type=int, metavar="MS",
                                help="Bin size in ms: NLB 5 or 20 (default 20); own recordings "
                                     "any whole number (default 10)."),
    "phase": click.option("--phase", type=click.Choice(NLB_PHASES),
                          help="NLB: val (train -> val, scored here) or test (train+val -> test)."),
    "threads": click.option("--threads", type=click.IntRange(min=1),
                            help="CPU threads (default: the cores other processes leave free, checked every epoch)."),
    "targets": click.option("--targets", help="NLB test phase: the published eval_data_test.h5."),
    "align": click.option("--align", metavar="COLUMN",
                          help="Own recordings: trials-table column (s) the window is aligned "
                               "to (default start_time)."),
    "window": click.option("--window", metavar="START,STOP",
                           help="Own recordings: seconds around the alignment, e.g. -0.2,0.8 "
                                "(default 0 to the shortest trial's end)."),
    "condition": click.option("--condition", metavar="COLUMN",
                              help="Own recordings: trials-table column of the conditions."),
    "behavior": click.option("--behavior", metavar="NAME",
                             help="Own recordings: a behavioural series binned as the spikes "
                                  "are (NWB: a TimeSeries' name or path; spike-times .npz: "
                                  "arrays NAME and NAME_times); decoded in behavior_r2."),
    "behavior_lag_ms": click.option("--behavior-lag", "behavior_lag_ms", type=int, metavar="MS",
                                    help="Own recordings: behavior_r2 decodes the behaviour MS "
                                         "after the rates' bin (default 0; NLB's MC_Maze: 100)."),
    "trials_where": click.option("--trials-where", metavar="CONDITION", multiple=True,
                                 callback=lambda context, option, given: list(given) or None,
                                 help="Own recordings: only the trials that meet CONDITION, "
                                      "COLUMN=VALUE (or !=, <, <=, >, >=), e.g. outcome=correct; "
                                      "COLUMN=A,B for one of several values; repeat it for "
                                      "several conditions (all must hold)."),
    "units_where": click.option("--units-where", metavar="CONDITION", multiple=True,
                                callback=lambda context, option, given: list(given) or None,
                                help="NWB recordings: only the units whose Units-table (or "
                                     "electrodes-table) columns meet CONDITION, e.g. "
                                     "quality=good or firing_rate>=0.5; repeat it for several."),
    "heldout_fraction": click.option("--heldout", "heldout_fraction", type=float,
                                     metavar="FRACTION",
                                     help="Own recordings and spike files without `heldout`: "
                                          "share of the units held out (default 0.2, seeded)."),
    "continuous": click.option("--continuous", is_flag=True, default=None,
                               help="Own recordings: chop the whole recording into windows, "
                                    "trials table or not (the default without one)."),
    "chop_s": click.option("--chop", "chop_s", type=float, metavar="LENGTH_S",
                           help="Continuous recordings: window length in s (default 1.0)."),
    "overlap_s": click.option("--overlap", "overlap_s", type=float, metavar="S",
                              help="Continuous recordings: overlap of neighbouring windows in s "
                                   "(default 0.2)."),
    "init_from": click.option("--init-from", "init_from", metavar="RUN",
                              help="Start from the weights of the run folder RUN, all but each "
                                   "neuron's own read-in and read-out (a new session on "
                                   "dynamics learned elsewhere); its network settings are "
                                   "taken unless given."),
    "forward_bins": click.option("--forward-bins", "forward_bins", type=int, metavar="K",
                                 help="Not NLB data: the last K bins of each trial are never "
                                      "shown to the encoder; the test trials' are scored by "
                                      "fp_bps (default 0)."),
}


#: the overrides that say which data and how they are read: ``pyrolf sweep`` takes them too
DATA_OPTIONS = ("data_dir", "bin_size_ms", "phase", "targets", "align", "window", "condition",
                "behavior", "behavior_lag_ms", "trials_where", "units_where", "heldout_fraction",
                "continuous", "chop_s", "overlap_s", "forward_bins")


# Where a command on a run folder runs: its own device (config.json's) unless given.
run_device = click.option("--device", type=click.Choice(DEVICES), default=None,
                          help="Where to run (default: the run's device).")


def with_overrides(command, names=tuple(OVERRIDES)):
    """``command`` with the options of :data:`OVERRIDES` ``names``."""
    for name in reversed(names):
        command = OVERRIDES[name](command)
    return command


def with_data_options(command):
    """``command`` with the options of :data:`DATA_OPTIONS`."""
    return with_overrides(command, DATA_OPTIONS)
