"""The library and its patrons: the patron directory, activity and its monthly rollups, consent."""
