"""Host variants of the stand-in: the Forge family's differences, one module or folder per host."""
