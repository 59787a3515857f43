"""Online experiments between served versions: A/B splits and team-draft interleaving, their
assignment, their statistics and their owner."""
