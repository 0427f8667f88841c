"""Personas and lapse risk, computed from the monthly rollups only (never titles, never raw events).

`features` turns each patron's rollups at a month into numbers (the documented list is `features.FEATURES`);
`personas` clusters them (k-means, k by silhouette, small clusters merged); `lapse` fits and scores the lapse
risk (logistic regression, validated on later held-out months); `refresh` recomputes both (weekly in the worker, or
`python -m crmcore insights refresh`).
"""
