"""What agents remember, with provenance (episodes, critic feedback, facts).

Empty until the self-play issue: the foundation stores transcripts in `haggler.store`, from
which agent memory will be built.
"""
