"""Data: the class index, clean image folders, corruptions and evaluation datasets."""
