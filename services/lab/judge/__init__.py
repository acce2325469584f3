"""Business judge: training on graded labels, threshold calibration, evaluation against labels."""
