"""The top layer: the pipeline that runs every stage in order (``wsteer demo``) and the generators that read
every stage (the manual's config reference, docs/reference/config.md)."""
