"""Peer comparison from the IMLS Public Libraries Survey: the library's own row, its peers, per-capita measures.

`survey` reads the imported survey years and chooses the library's own row; `choice` picks peers (same
state, same locale, the same population band, or the nearest N by a standardised distance); `comparison`
sets the library's per-capita measures against its peers' and beside Liaison's own live figures.
"""
