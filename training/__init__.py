"""Offline training: MovieLens-style ratings in, an exported model version out."""
