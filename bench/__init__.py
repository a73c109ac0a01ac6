"""`make bench`: the acknowledgement path and the pipeline, measured against a ceiling."""
