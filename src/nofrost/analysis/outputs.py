"""The files ``nofrost analyze`` writes that other parts read (reports embed its figures)."""

BN_DISTANCE_FIGURE = "bn_distance.png"
BN_RUNNING_FIGURE = "bn_running_stats.png"
#: What the BN-statistics figures show, for reports that embed them.
BN_FIGURE_CAPTIONS = {
    BN_DISTANCE_FIGURE: "Clean vs adversarial feature statistics over depth (symmetrised KL per channel)",
    BN_RUNNING_FIGURE: "Running mean and variance per channel of one BN layer (Figure 1)",
}
