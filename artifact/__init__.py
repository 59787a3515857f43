"""The contract between `training/` and `app/`: an exported version directory.

Training writes versions and the service reads them only through this package: the file layout
and version numbering (`layout`), the checked manifest (`manifest`), checksums (`checksums`),
strict JSON (`jsonsafe`), each user's seen items (`seen`) and the one top-N kernel both sides
rank with (`topn`), so offline metrics measure exactly what the service answers. It imports
neither side, and neither TensorFlow nor any web framework.
"""
