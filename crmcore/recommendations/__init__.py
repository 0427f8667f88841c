"""New materials you may like: the catalogue feed, each patron's interests (categories, never titles) and
the {{ recommendations }} merge block that joins them in campaign messages."""
