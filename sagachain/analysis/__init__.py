"""Analyses of a chain file beyond the audit: what its public data reveals.

``leakage`` measures what an outside observer learns about each enclave from
the public chain alone (gas, sizes, timing, public accounts touched) and how
well those signals tell two workloads apart; ``sagachain leakage`` prints it.
"""

from sagachain.analysis.leakage import (
    SETS,
    SIGNALS,
    Observation,
    Summary,
    jaccard_distance,
    ks_critical,
    ks_statistic,
    observe,
    separation,
)

__all__ = [
    "SETS",
    "SIGNALS",
    "Observation",
    "Summary",
    "jaccard_distance",
    "ks_critical",
    "ks_statistic",
    "observe",
    "separation",
]
