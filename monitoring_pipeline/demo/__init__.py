"""The embedded default: real data sets that ship inside installed packages."""
